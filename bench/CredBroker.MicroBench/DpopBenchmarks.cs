using BenchmarkDotNet.Attributes;
using CredBroker.Core.Dpop;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;
using CredBroker.Redis;
using CredBroker.Testing;
using CredBroker.Validation;

namespace CredBroker.MicroBench;

/// <summary>
/// What DPoP (RFC 9449) adds per mint and per validation. Mint side: the agent's proof (ES256 sign),
/// the broker's proof check (parse, import the embedded key, ES256 verify, htm/htu/iat) and its jti
/// record (in memory, and SET NX PX on a local Redis), next to TokenMinter.Mint with and without
/// cnf.jkt. Validation side: AccessTokenValidator.Validate of a bearer token against the full DPoP
/// path of the ASP.NET Core handler (proof check with ath, replay cache, token with cnf.jkt).
/// </summary>
[MemoryDiagnoser]
public class DpopBenchmarks
{
    private static readonly Uri BrokerUri = new("http://127.0.0.1:5401/credbroker.v1.AgentBroker/BeginTask");
    private static readonly Uri ApiUri = new("https://api.example/tickets");

    private readonly DpopProofOptions _options = new();
    private SigningKey _key = null!;
    private TokenMinter _minter = null!;
    private Lease _lease = null!;
    private DpopKey _dpop = null!;
    private string _proof = null!;
    private InMemoryDpopReplayStore _memory = null!;
    private RedisServer _redis = null!;
    private StackExchange.Redis.ConnectionMultiplexer _connection = null!;
    private RedisDpopReplayStore _redisStore = null!;
    private AccessTokenValidator _validator = null!;
    private DpopReplayCache _cache = null!;
    private string _bearerToken = null!;
    private string _boundToken = null!;
    private string _apiProof = null!;
    private long _n;
    private System.Security.Cryptography.ECDsa _verifier = null!;
    private byte[] _proofInput = null!;
    private byte[] _proofSignature = null!;

    [GlobalSetup]
    public void Setup()
    {
        _key = SigningKey.Generate();
        _minter = new TokenMinter(new StaticSigningKeys([_key]), "http://127.0.0.1:5400", TimeProvider.System);
        _lease = MintFixture.Lease("task-0001", DateTimeOffset.UtcNow);
        _dpop = DpopKey.Generate();
        _proof = _dpop.CreateProof("POST", BrokerUri);
        var jwk = System.Text.Json.Nodes.JsonNode.Parse(_dpop.PublicJwk)!;
        _verifier = System.Security.Cryptography.ECDsa.Create(new System.Security.Cryptography.ECParameters
        {
            Curve = System.Security.Cryptography.ECCurve.NamedCurves.nistP256,
            Q = new System.Security.Cryptography.ECPoint
            {
                X = System.Buffers.Text.Base64Url.DecodeFromChars((string)jwk["x"]!), Y = System.Buffers.Text.Base64Url.DecodeFromChars((string)jwk["y"]!),
            },
        });
        var dot = _proof.LastIndexOf('.');
        _proofInput = System.Text.Encoding.ASCII.GetBytes(_proof[..dot]);
        _proofSignature = System.Buffers.Text.Base64Url.DecodeFromChars(_proof.AsSpan(dot + 1));
        _memory = new InMemoryDpopReplayStore(TimeProvider.System, capacity: 10_000_000);
        _redis = RedisServer.Start();
        _connection = StackExchange.Redis.ConnectionMultiplexer.Connect(_redis.ConnectionString);
        _redisStore = new RedisDpopReplayStore(_connection);

        var jwks = Jwks.Write([_key]);
        var keys = new JwksCache(_ => Task.FromResult(jwks), TimeProvider.System);
        keys.RefreshAsync().GetAwaiter().GetResult();
        _validator = new AccessTokenValidator(new TokenValidationOptions { Issuer = "http://127.0.0.1:5400", Audience = _lease.Audience }, keys);
        _cache = new DpopReplayCache(10_000_000);
        _bearerToken = _minter.Mint(_lease, MintFixture.Agent, _lease.Scopes, _lease.Audience).AccessToken;
        _boundToken = _minter.Mint(_lease, MintFixture.Agent, _lease.Scopes, _lease.Audience, dpopKeyThumbprint: _dpop.Thumbprint).AccessToken;
        _apiProof = _dpop.CreateProof("GET", ApiUri, _boundToken);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _verifier.Dispose();
        _connection.Dispose();
        _redis.Dispose();
        _dpop.Dispose();
        _key.Dispose();
    }

    [Benchmark(Baseline = true, Description = "mint: TokenMinter.Mint, unbound")]
    public MintedToken Mint() => _minter.Mint(_lease, MintFixture.Agent, _lease.Scopes, _lease.Audience);

    [Benchmark(Description = "mint: TokenMinter.Mint with cnf.jkt")]
    public MintedToken MintBound() => _minter.Mint(_lease, MintFixture.Agent, _lease.Scopes, _lease.Audience, dpopKeyThumbprint: _dpop.Thumbprint);

    [Benchmark(Description = "agent: DpopKey.CreateProof (ES256 sign)")]
    public string CreateProof() => _dpop.CreateProof("POST", BrokerUri);

    [Benchmark(Description = "floor: bare ES256 verify of the proof (key imported once)")]
    public bool VerifyProofSignature() => _verifier.VerifyData(_proofInput, _proofSignature, System.Security.Cryptography.HashAlgorithmName.SHA256);

    [Benchmark(Description = "broker: proof check (DpopProofValidator.Validate)")]
    public DpopProofResult CheckProof() => DpopProofValidator.Validate(_proof, "POST", BrokerUri, DateTimeOffset.UtcNow, _options);

    [Benchmark(Description = "broker: jti record, in memory")]
    public ValueTask<bool> RecordInMemory() => _memory.TryRecordAsync("k" + Interlocked.Increment(ref _n), TimeSpan.FromSeconds(61), default);

    [Benchmark(Description = "broker: jti record, Redis SET NX PX (local)")]
    public ValueTask<bool> RecordInRedis() => _redisStore.TryRecordAsync("k" + Interlocked.Increment(ref _n), TimeSpan.FromSeconds(61), default);

    [Benchmark(Description = "API: Validate, bearer token")]
    public bool ValidateBearer() => _validator.Validate(_bearerToken, DateTimeOffset.UtcNow).IsValid;

    [Benchmark(Description = "API: Validate with DPoP (proof + ath + replay cache + cnf.jkt)")]
    public bool ValidateDpop()
    {
        var now = DateTimeOffset.UtcNow;
        var proof = DpopProofValidator.Validate(_apiProof, "GET", ApiUri, now, _options, _boundToken).Proof!;
        // A fresh jti per iteration, as every real request has one (the proof is otherwise the same work).
        _cache.TryAdd(proof.ReplayKey + Interlocked.Increment(ref _n), proof.AcceptableUntil(_options), now);
        return _validator.Validate(_boundToken, now, null, proof.KeyThumbprint).IsValid;
    }
}
