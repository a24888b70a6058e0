using System.Text;
using System.Text.Json.Nodes;
using CredBroker.Core.Agents;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;
using CredBroker.Testing;
using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

/// <summary>Real broker tokens (TokenMinter) and hand-crafted ones signed with the same keys.</summary>
internal sealed class TestTokens : IDisposable
{
    public const string Issuer = "https://broker.example";
    public const string Audience = "demo-api";
    public const string AgentId = "dev-agent";

    public static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    public TestTokens()
    {
        Clock = new ManualTimeProvider(Start);
        Key = SigningKey.Generate();
        Minter = new TokenMinter(new StaticSigningKeys([Key]), Issuer, Clock);
    }

    public ManualTimeProvider Clock { get; }

    public SigningKey Key { get; }

    public TokenMinter Minter { get; }

    public DateTimeOffset Now => Clock.GetUtcNow();

    public static TokenValidationOptions Options(string audience = Audience) => new() { Issuer = Issuer, Audience = audience };

    public static string JwksOf(params SigningKey[] keys) => Jwks.Write(keys);

    /// <summary>A validator whose cache is loaded with <paramref name="keys"/> (this fixture's key by default).</summary>
    public AccessTokenValidator Validator(TokenValidationOptions? options = null, IRevocationState? revocation = null, params SigningKey[] keys)
    {
        var jwks = JwksOf(keys.Length == 0 ? [Key] : keys);
        var cache = new JwksCache(_ => Task.FromResult(jwks), Clock);
        cache.RefreshAsync().GetAwaiter().GetResult();
        return new AccessTokenValidator(options ?? Options(), cache, revocation);
    }

    public MintedToken Mint(string audience = Audience, string leaseId = "lease-1") =>
        Minter.Mint(Lease(leaseId, audience), Agent(), ["demo:read", "demo:write"], audience);

    public static Lease Lease(string leaseId, string audience) => new()
    {
        LeaseId = leaseId, AgentId = AgentId, TaskId = "task-7", Owner = "dev@example.com", Purpose = "tests",
        Audience = audience, Scopes = ["demo:read", "demo:write"], State = LeaseState.Active,
        CreatedAt = Start, Deadline = Start.AddHours(1), MaxDeadline = Start.AddHours(1),
    };

    public static AgentDefinition Agent() => new()
    {
        Id = AgentId, Owner = "dev@example.com", Purpose = "tests", Audiences = [Audience],
        AllowedScopes = new HashSet<string> { "demo:read", "demo:write" },
    };

    public string Header(string? kid = null) => $"{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"{kid ?? Key.Kid}\"}}";

    /// <summary>The claims the broker writes, issued now for 10 minutes; <paramref name="edit"/> changes them.</summary>
    public string Payload(Action<JsonObject>? edit = null)
    {
        var now = Now.ToUnixTimeSeconds();
        var claims = new JsonObject
        {
            ["iss"] = Issuer, ["sub"] = AgentId, ["act"] = new JsonObject { ["sub"] = AgentId }, ["aud"] = Audience,
            ["client_id"] = AgentId, ["scope"] = "demo:read demo:write", ["jti"] = "jti-1", ["iat"] = now, ["nbf"] = now,
            ["exp"] = now + 600, ["lease_id"] = "lease-1", ["task_id"] = "task-7", ["owner"] = "dev@example.com",
        };
        edit?.Invoke(claims);
        return claims.ToJsonString();
    }

    /// <summary>A compact JWS of exactly these header and payload texts, ES256-signed with <paramref name="key"/> (this fixture's key by default).</summary>
    public string Sign(string headerJson, string payloadJson, SigningKey? key = null)
    {
        var input = B64(Encoding.UTF8.GetBytes(headerJson)) + "." + B64(Encoding.UTF8.GetBytes(payloadJson));
        return input + "." + B64((key ?? Key).Sign(Encoding.ASCII.GetBytes(input)));
    }

    public string Sign(Action<JsonObject>? edit = null, SigningKey? key = null) => Sign(Header(key?.Kid), Payload(edit), key);

    public static string B64(ReadOnlySpan<byte> data) => System.Buffers.Text.Base64Url.EncodeToString(data);

    public static byte[] Unb64(string text) => System.Buffers.Text.Base64Url.DecodeFromChars(text);

    public void Dispose() => Key.Dispose();
}
