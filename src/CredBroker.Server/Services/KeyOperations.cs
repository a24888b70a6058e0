using System.Globalization;
using CredBroker.Contracts.V1;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Core.Tokens;
using CredBroker.Server.Rpc;
using Grpc.Core;
using Google.Protobuf.WellKnownTypes;
using AuditEvent = CredBroker.Core.Audit.AuditEvent;

namespace CredBroker.Server.Services;

/// <summary>Operator.RotateSigningKey: the key schedule, on the operator listener.</summary>
public sealed class KeyOperations(KeyRotation rotation, RotatingSigningKeys keys, TimeProvider time, IAuditEvents audit, ILogger<KeyOperations> log)
{
    public static SigningKeyStatus ToWire(ScheduledKey key, DateTimeOffset now, bool mounted)
    {
        var wire = new SigningKeyStatus
        {
            Kid = key.Kid,
            Phase = key.PhaseAt(now).ToString().ToLowerInvariant(),
            PublishAt = Timestamp.FromDateTimeOffset(key.PublishAt),
            ActivateAt = Timestamp.FromDateTimeOffset(key.ActivateAt),
            Mounted = mounted,
        };
        if (key.RetireAt is { } retire)
        {
            wire.RetireAt = Timestamp.FromDateTimeOffset(retire);
        }

        if (key.RemoveAt is { } remove)
        {
            wire.RemoveAt = Timestamp.FromDateTimeOffset(remove);
        }

        return wire;
    }

    public async Task<RotateSigningKeyResponse> RotateAsync(RotateSigningKeyRequest request, ServerCallContext context)
    {
        if (request.Kid.Length > 128 || request.Kid.Any(c => !char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_')))
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "kid must be a key's RFC 7638 thumbprint (base64url, at most 128 characters), or empty for the next mounted key.");
        }

        if (request.Reason.Length > 256)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "reason is longer than 256 characters.");
        }

        var actor = CallGuard.Caller(context).Subject;
        KeySchedule schedule;
        try
        {
            schedule = await rotation.RotateAsync(request.Kid.Length > 0 ? request.Kid : null, context.CancellationToken);
        }
        catch (KeyRotationException e)
        {
            throw RpcErrors.Create(e.Error == KeyRotationError.UnknownKey ? StatusCode.NotFound : StatusCode.FailedPrecondition, e.Message);
        }

        var next = schedule.Keys[^1];
        // Like every operator action: recorded before it is acknowledged; an audit outage answers UNAVAILABLE.
        await audit.RaiseAsync(new AuditEvent
        {
            Type = AuditEventType.SigningKeyRotated,
            Time = time.GetUtcNow(),
            Operator = actor,
            Reason = request.Reason,
            Details = new Dictionary<string, string>
            {
                ["kid"] = next.Kid,
                ["publish_at"] = next.PublishAt.ToString("O", CultureInfo.InvariantCulture),
                ["activate_at"] = next.ActivateAt.ToString("O", CultureInfo.InvariantCulture),
                ["previous_kid"] = schedule.Keys.Count > 1 ? schedule.Keys[^2].Kid : "",
            },
        }, context.CancellationToken);
        log.LogInformation("Signing key rotation by {Operator}: {Kid} signs from {ActivateAt:O} ({Reason})", actor, next.Kid, next.ActivateAt, request.Reason);
        var now = time.GetUtcNow();
        var response = new RotateSigningKeyResponse { Kid = next.Kid, ActivateAt = Timestamp.FromDateTimeOffset(next.ActivateAt) };
        response.Keys.AddRange(schedule.Keys.Select(k => ToWire(k, now, keys.Ring.Find(k.Kid) is not null)));
        return response;
    }
}
