using CredBroker.Contracts.V1;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;
using CredBroker.Server.Rpc;
using Grpc.Core;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Server.Services;

/// <summary>credbroker.v1.TokenValidation: introspection (RFC 7662) and the JWKS, for downstream APIs.</summary>
public sealed class TokenValidationService(TaskBroker broker, ISigningKeys keys, ILeaseStore store, RevocationNotifier notifier, Metrics.BrokerMetrics? metrics = null) : TokenValidation.TokenValidationBase
{
    public const string ServiceName = "credbroker.v1.TokenValidation";
    private const int PageSize = 500;

    /// <summary>A quiet stream re-reads this often and sends a heartbeat, so validators can tell quiet from dead.</summary>
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(5);

    public override async Task<IntrospectResponse> Introspect(IntrospectRequest request, ServerCallContext context)
    {
        if (request.Token.Length == 0)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "token is required.");
        }

        var result = await broker.IntrospectAsync(request.Token, context.CancellationToken);
        if (result.Claims is not { } c)
        {
            return new IntrospectResponse { Active = false };
        }

        return new IntrospectResponse
        {
            Active = true,
            Scope = c.Scope,
            ClientId = c.ClientId,
            Sub = c.Subject,
            Aud = c.Audience,
            Iss = c.Issuer,
            Jti = c.TokenId,
            Exp = Timestamp.FromDateTimeOffset(c.ExpiresAt),
            Iat = Timestamp.FromDateTimeOffset(c.IssuedAt),
            Nbf = Timestamp.FromDateTimeOffset(c.NotBefore),
            TokenType = "Bearer",
            LeaseId = c.LeaseId,
            TaskId = c.TaskId,
            Owner = c.Owner,
            ActSub = c.ActorSubject,
            ActChain = { c.Actors },
            ParentLeaseIds = { c.ParentLeaseIds },
            CnfX5TS256 = c.CertificateThumbprint ?? string.Empty,
        };
    }

    public override Task<GetSigningKeysResponse> GetSigningKeys(GetSigningKeysRequest request, ServerCallContext context)
    {
        var response = new GetSigningKeysResponse
        {
            JwksJson = keys.JwksJson ?? throw RpcErrors.Create(StatusCode.Unavailable, "The signing keys are not loaded yet (the key schedule store is unreachable); retry."),
        };
        foreach (var key in keys.Published)
        {
            response.Keys.Add(new Contracts.V1.SigningKey { Kid = key.Kid, Kty = "EC", Crv = "P-256", X = key.X, Y = key.Y, Alg = "ES256", Use = "sig" });
        }

        return Task.FromResult(response);
    }

    public override async Task WatchRevocations(WatchRevocationsRequest request, IServerStreamWriter<Contracts.V1.RevocationEvent> stream, ServerCallContext context)
    {
        RevocationCursor? cursor = null;
        if (request.Cursor.Length > 0 && !RevocationCursor.TryParse(request.Cursor, out cursor))
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "cursor is not a cursor this broker issued; pass RevocationEvent.cursor back unchanged, or omit it to start over.");
        }

        var cancellationToken = context.CancellationToken;
        using var watching = notifier.Watch();
        if (cursor is null && request.FromNow)
        {
            cursor = await Read(() => store.CurrentRevocationCursorAsync(cancellationToken));
        }

        // A heartbeat says "every event written before its time has been sent": it is only sent right after a read that
        // reached the end, and carries the time that read started (never a stale read's promise sent after a wait).
        var heartbeatDue = true;
        while (true)
        {
            var changed = notifier.NextChange;
            var readAt = DateTimeOffset.UtcNow;
            var page = await Read(() => store.ReadRevocationsAsync(cursor, PageSize, cancellationToken));
            if (page.CursorTooOld)
            {
                throw RpcErrors.Create(StatusCode.FailedPrecondition,
                    "Revocation events after this cursor were dropped by retention, so some were missed: resync by calling WatchRevocations without a cursor.",
                    "CURSOR_EXPIRED");
            }

            var position = cursor ?? RevocationCursor.Start;
            foreach (var e in page.Events)
            {
                position = position.With(e.Shard, e.Position);
                await stream.WriteAsync(ToWire(e, position), cancellationToken);
                metrics?.RecordRevocationDelivered(DateTimeOffset.UtcNow - e.At);
            }

            cursor = page.Cursor;
            if (page.Events.Count < PageSize)
            {
                // The first heartbeat comes right after the backlog: it tells a validator it has caught up. Later ones
                // follow the read after each quiet Heartbeat interval.
                if (heartbeatDue)
                {
                    heartbeatDue = false;
                    await stream.WriteAsync(HeartbeatAt(cursor, readAt), cancellationToken);
                }

                try
                {
                    await changed.WaitAsync(Heartbeat, cancellationToken);
                }
                catch (TimeoutException)
                {
                    heartbeatDue = true;
                }
            }
        }
    }

    private static Contracts.V1.RevocationEvent HeartbeatAt(RevocationCursor cursor, DateTimeOffset asOf) => new()
    {
        Kind = "heartbeat",
        Cursor = cursor.ToString(),
        At = Timestamp.FromDateTimeOffset(asOf),
    };

    private static Contracts.V1.RevocationEvent ToWire(Core.Leases.RevocationEvent e, RevocationCursor cursor) => new()
    {
        Cursor = cursor.ToString(),
        Kind = e.Kind == RevocationKind.Lease ? "lease" : "agent",
        LeaseId = e.LeaseId ?? string.Empty,
        AgentId = e.AgentId,
        TaskId = e.TaskId ?? string.Empty,
        Cause = e.Cause.ToWire(),
        Reason = e.Reason,
        Actor = e.Actor,
        At = Timestamp.FromDateTimeOffset(e.At),
        NotAfter = Timestamp.FromDateTimeOffset(e.NotAfter),
    };

    private static async Task<T> Read<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (StoreUnavailableException e)
        {
            throw RpcErrors.Create(StatusCode.Unavailable, $"The revocation log is unavailable ({e.Message}); reconnect with your last cursor.");
        }
    }
}
