using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CredBroker.Core.Agents;
using CredBroker.Core.Leases;

namespace CredBroker.Core.Tokens;

public sealed record MintedToken(string AccessToken, string TokenId, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, IReadOnlyList<string> Scopes);

/// <summary>
/// Mints RFC 9068 access tokens (ES256, <c>typ: at+jwt</c>) for a lease. The token's <c>exp</c>
/// is never past the lease deadline, so a lease that times out needs no revocation.
/// </summary>
public sealed class TokenMinter(ISigningKeys keys, string issuer, TimeProvider time)
{
    public const int MaxTokenBytes = 4096;

    public string Issuer => issuer;

    /// <param name="certificateThumbprint">The caller's mTLS certificate (base64url SHA-256): the token gets <c>cnf.x5t#S256</c> (RFC 8705).</param>
    /// <param name="dpopKeyThumbprint">The RFC 7638 thumbprint of the caller's DPoP key: the token gets <c>cnf.jkt</c> (RFC 9449).</param>
    public MintedToken Mint(Lease lease, AgentDefinition agent, IReadOnlyList<string> scopes, string audience, string? certificateThumbprint = null, string? dpopKeyThumbprint = null)
    {
        var key = keys.Current;
        // JWT NumericDate has second precision: truncate so exp is never rounded past the deadline.
        var now = TruncateToSeconds(time.GetUtcNow());
        var cap = now + agent.TokenTtlFor(scopes);
        var exp = TruncateToSeconds(cap < lease.Deadline ? cap : lease.Deadline);
        var jti = NewTokenId();

        var header = Base64Url.Encode(Encoding.UTF8.GetBytes($"{{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"{key.Kid}\"}}"));
        var payload = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(payload))
        {
            json.WriteStartObject();
            json.WriteString("iss", issuer);
            json.WriteString("sub", lease.Subject ?? lease.AgentId);
            WriteActorChain(json, lease);
            json.WriteString("aud", audience);
            json.WriteString("client_id", lease.AgentId);
            json.WriteString("scope", string.Join(' ', scopes));
            json.WriteString("jti", jti);
            json.WriteNumber("iat", now.ToUnixTimeSeconds());
            json.WriteNumber("nbf", now.ToUnixTimeSeconds());
            json.WriteNumber("exp", exp.ToUnixTimeSeconds());
            json.WriteString("lease_id", lease.LeaseId);
            json.WriteString("task_id", lease.TaskId);
            json.WriteString("owner", lease.Owner);
            if (lease.ParentLeaseIds.Count > 0)
            {
                json.WriteStartArray("parent_lease_ids");
                foreach (var parent in lease.ParentLeaseIds)
                {
                    json.WriteStringValue(parent);
                }

                json.WriteEndArray();
            }

            if (lease.Context.Count > 0)
            {
                // The granted context with each label's source, so an API can require verified labels.
                json.WriteStartObject("ctx");
                foreach (var label in lease.Context)
                {
                    json.WriteStartObject(label.Key);
                    json.WriteString("value", label.Value);
                    json.WriteString("source", label.Source);
                    json.WriteEndObject();
                }

                json.WriteEndObject();
            }

            if (certificateThumbprint is not null || dpopKeyThumbprint is not null)
            {
                // Both when the caller used both: a validator then checks each.
                json.WriteStartObject("cnf");
                if (certificateThumbprint is not null)
                {
                    json.WriteString("x5t#S256", certificateThumbprint);
                }

                if (dpopKeyThumbprint is not null)
                {
                    json.WriteString("jkt", dpopKeyThumbprint);
                }

                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        var signingInput = header + "." + Base64Url.Encode(payload.WrittenSpan);
        var signature = key.Sign(Encoding.ASCII.GetBytes(signingInput));
        var token = signingInput + "." + Base64Url.Encode(signature);
        if (token.Length > MaxTokenBytes)
        {
            throw new Broker.BrokerException(Broker.BrokerErrorKind.InvalidArgument,
                $"The token would be {token.Length} bytes, over the {MaxTokenBytes}-byte limit; request fewer or shorter scopes.");
        }

        return new MintedToken(token, jti, now, exp, scopes);
    }

    /// <summary>RFC 8693 <c>act</c>: the agent, with each earlier actor nested inside the one it delegated to.</summary>
    private static void WriteActorChain(Utf8JsonWriter json, Lease lease)
    {
        json.WriteStartObject("act");
        json.WriteString("sub", lease.AgentId);
        foreach (var actor in lease.Actors)
        {
            json.WriteStartObject("act");
            json.WriteString("sub", actor);
        }

        for (var i = 0; i <= lease.Actors.Count; i++)
        {
            json.WriteEndObject();
        }
    }

    private static DateTimeOffset TruncateToSeconds(DateTimeOffset t) => DateTimeOffset.FromUnixTimeSeconds(t.ToUnixTimeSeconds());

    private static string NewTokenId()
    {
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes);
        return Base64Url.Encode(bytes);
    }
}
