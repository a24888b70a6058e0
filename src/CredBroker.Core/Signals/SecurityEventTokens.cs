using System.Buffers;
using System.Text;
using System.Text.Json;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;

namespace CredBroker.Core.Signals;

/// <summary>
/// Revocation events as Security Event Tokens (RFC 8417) in the SSF 1.0 profile: header
/// <c>typ: secevent+jwt</c>, <c>alg: ES256</c>, <c>kid</c> of the broker's current signing key;
/// claims <c>iss</c>, <c>aud</c> (the stream's), <c>iat</c>, <c>jti</c>, <c>sub_id</c> (a complex
/// subject: <c>session</c> = the lease, <c>user</c> = the agent) and one CAEP
/// <c>session-revoked</c> event. The schema is documented in docs/ssf.md.
/// </summary>
public static class SecurityEventTokens
{
    public static string Create(SigningKey key, string issuer, string audience, string jti, RevocationEvent e, DateTimeOffset now)
    {
        var header = Base64Url.Encode(Encoding.UTF8.GetBytes($"{{\"alg\":\"ES256\",\"typ\":\"{SsfNames.SetType}\",\"kid\":\"{key.Kid}\"}}"));
        var payload = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(payload))
        {
            json.WriteStartObject();
            json.WriteString("iss", issuer);
            json.WriteString("aud", audience);
            json.WriteNumber("iat", now.ToUnixTimeSeconds());
            json.WriteString("jti", jti);
            json.WriteStartObject("sub_id");
            json.WriteString("format", "complex");
            if (e.LeaseId is { } leaseId)
            {
                Opaque(json, "session", leaseId);
            }

            Opaque(json, "user", e.AgentId);
            json.WriteEndObject();
            json.WriteStartObject("events");
            json.WriteStartObject(SsfNames.SessionRevoked);
            json.WriteNumber("event_timestamp", e.At.ToUnixTimeSeconds());
            json.WriteString("initiating_entity", e.Cause == RevocationCause.Completed ? "user" : "admin");
            json.WriteStartObject("reason_admin");
            json.WriteString("en", e.Reason.Length > 0 ? e.Reason : e.Cause.ToWire());
            json.WriteEndObject();
            json.WriteString("revocation", e.Kind == RevocationKind.Lease ? "lease" : "agent");
            json.WriteString("cause", e.Cause.ToWire());
            json.WriteString("agent_id", e.AgentId);
            if (e.LeaseId is { } id)
            {
                json.WriteString("lease_id", id);
            }

            if (e.TaskId is { Length: > 0 } task)
            {
                json.WriteString("task_id", task);
            }

            if (e.Kind == RevocationKind.Lease)
            {
                // Every token of the lease is invalid from event_timestamp on; none outlives the lease deadline.
                json.WriteNumber("tokens_invalid_from", e.At.ToUnixTimeSeconds());
                json.WriteNumber("deny_until", CeilingSeconds(e.NotAfter));
            }
            else
            {
                // Quarantine: the agent's tokens issued before this instant are invalid (rounded up: fail closed).
                json.WriteNumber("tokens_invalid_from", e.At.ToUnixTimeSeconds());
                json.WriteNumber("issued_before", CeilingSeconds(e.NotAfter));
            }

            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndObject();
        }

        var signingInput = header + "." + Base64Url.Encode(payload.WrittenSpan);
        return signingInput + "." + Base64Url.Encode(key.Sign(Encoding.ASCII.GetBytes(signingInput)));
    }

    private static long CeilingSeconds(DateTimeOffset t)
    {
        var seconds = t.ToUnixTimeSeconds();
        return t.ToUnixTimeMilliseconds() % 1000 == 0 ? seconds : seconds + 1;
    }

    private static void Opaque(Utf8JsonWriter json, string member, string id)
    {
        json.WriteStartObject(member);
        json.WriteString("format", "opaque");
        json.WriteString("id", id);
        json.WriteEndObject();
    }
}
