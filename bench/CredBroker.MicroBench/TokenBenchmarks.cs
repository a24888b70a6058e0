using System.Security.Claims;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.MicroBench;

/// <summary>
/// The signing side of a mint against its floor: TokenMinter.Mint (claims JSON, base64url, ES256
/// sign) vs a bare ES256 sign of a token-sized input; and the check of the caller's workload
/// credential (a JWT, ES256 verify through IdentityModel), which the broker does on every call.
/// </summary>
[MemoryDiagnoser]
public class TokenBenchmarks
{
    private readonly byte[] _signingInput = new byte[560];
    private SigningKey _key = null!;
    private TokenMinter _minter = null!;
    private Lease _lease = null!;
    private ECDsa _issuerKey = null!;
    private string _credential = null!;
    private TokenValidationParameters _parameters = null!;
    private readonly JsonWebTokenHandler _handler = new();

    [GlobalSetup]
    public void Setup()
    {
        _key = SigningKey.Generate();
        _minter = new TokenMinter(new StaticSigningKeys([_key]), "http://127.0.0.1:5400", TimeProvider.System);
        _lease = MintFixture.Lease("task-0001", DateTimeOffset.UtcNow);
        RandomNumberGenerator.Fill(_signingInput);

        _issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var signingKey = new ECDsaSecurityKey(_issuerKey) { KeyId = "issuer" };
        var now = DateTime.UtcNow;
        _credential = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "https://workloads.bench",
            Audience = "credbroker",
            Subject = new ClaimsIdentity([new Claim("sub", "system:serviceaccount:bench:agent")]),
            IssuedAt = now,
            NotBefore = now,
            Expires = now.AddHours(1),
            SigningCredentials = new SigningCredentials(signingKey, SecurityAlgorithms.EcdsaSha256),
        });
        var publicKey = ECDsa.Create(_issuerKey.ExportParameters(includePrivateParameters: false));
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = "https://workloads.bench",
            ValidAudience = "credbroker",
            IssuerSigningKeys = [new ECDsaSecurityKey(publicKey) { KeyId = "issuer" }],
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
            RequireExpirationTime = true,
            RequireSignedTokens = true,
        };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _key.Dispose();
        _issuerKey.Dispose();
    }

    [Benchmark(Baseline = true, Description = "ES256 sign of 560 bytes (the floor)")]
    public byte[] Sign() => _key.Sign(_signingInput);

    [Benchmark(Description = "TokenMinter.Mint (build + sign)")]
    public MintedToken Mint() => _minter.Mint(_lease, MintFixture.Agent, _lease.Scopes, _lease.Audience);

    [Benchmark(Description = "workload JWT validation (IdentityModel, ES256 verify)")]
    public async Task<bool> ValidateCredential() => (await _handler.ValidateTokenAsync(_credential, _parameters)).IsValid;
}
