using CredBroker.Core.Broker;
using CredBroker.Core.Dpop;
using CredBroker.Server.Hosting;
using CredBroker.Server.Rpc;
using CredBroker.Validation;
using Grpc.Core;

namespace CredBroker.Server.Auth;

/// <summary>
/// DPoP (RFC 9449) on the agent listener: the proof in the gRPC metadata key <c>dpop</c> of BeginTask,
/// IssueToken and RenewLease is checked (<see cref="DpopProofValidator"/>: typ, alg, public jwk,
/// signature, htm POST, htu = one of the agent listener's URIs + the method path, iat window, jti),
/// then its jti is recorded once across all replicas (<see cref="IDpopReplayStore"/>); the caller then
/// carries the key's thumbprint and the tokens minted for it carry <c>cnf.jkt</c>. Refusals name the
/// failed check as the ErrorInfo reason (<c>DPOP_HTU</c>, <c>DPOP_REPLAY</c>, ...): INVALID_ARGUMENT for
/// an unreadable, oversized or repeated header, UNAUTHENTICATED for a proof that proves nothing.
/// </summary>
public sealed class DpopProofCheck(BrokerOptions.DpopOptions options, IReadOnlyList<Uri> agentUris, IDpopReplayStore replay, TimeProvider time)
{
    /// <summary>The gRPC metadata key of the proof (DESIGN contract).</summary>
    public const string MetadataKey = "dpop";

    private readonly DpopProofOptions _proofs = options.ProofOptions();

    /// <summary>The listener URIs a proof's <c>htu</c> is checked against (method path appended).</summary>
    public IReadOnlyList<Uri> AgentUris { get; } = agentUris;

    /// <summary><paramref name="caller"/> bound to the key of the call's proof; unchanged when the call carries none.</summary>
    public async Task<CallerIdentity> BindAsync(CallerIdentity caller, ServerCallContext context)
    {
        Metadata.Entry? entry = null;
        var count = 0;
        foreach (var header in context.RequestHeaders)
        {
            if (string.Equals(header.Key, MetadataKey, StringComparison.OrdinalIgnoreCase) || string.Equals(header.Key, MetadataKey + "-bin", StringComparison.OrdinalIgnoreCase))
            {
                entry = header;
                count++;
            }
        }

        if (entry is null)
        {
            return caller;
        }

        if (!options.Enabled)
        {
            throw RpcErrors.Create(StatusCode.InvalidArgument, "DPoP is disabled on this broker (CredBroker:Dpop:Enabled=false); call without the 'dpop' metadata.", "DPOP_DISABLED");
        }

        // HTTP/2 hands repeated headers over joined with commas, which no compact JWS contains.
        if (count > 1 || entry.IsBinary || entry.Value.Contains(',', StringComparison.Ordinal))
        {
            throw Refused(DpopErrors.Multiple, entry.IsBinary ? "the proof goes in the text metadata key 'dpop'." : "send exactly one 'dpop' metadata entry.");
        }

        var now = time.GetUtcNow();
        var uris = AgentUris.Select(u => new Uri(u, context.Method.TrimStart('/'))).ToList();
        var result = DpopProofValidator.Validate(entry.Value, "POST", uris, now, _proofs);
        if (result.Proof is not { } proof)
        {
            throw Refused(result.Error!, result.Detail!);
        }

        // Remembered until the proof could no longer be accepted anyway: bounded by the iat window.
        var ttl = proof.AcceptableUntil(_proofs) - now;
        ttl = ttl < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : ttl > _proofs.ReplayWindow ? _proofs.ReplayWindow : ttl;
        if (!await replay.TryRecordAsync(proof.ReplayKey, ttl, context.CancellationToken))
        {
            throw Refused(DpopErrors.Replay, "this proof (its jti, for this key) was used already; make a new proof for every call.");
        }

        return caller with { DpopKeyThumbprint = proof.KeyThumbprint };
    }

    private static RpcException Refused(string error, string detail)
    {
        var code = error is DpopErrors.Multiple or DpopErrors.Size or DpopErrors.Malformed ? StatusCode.InvalidArgument : StatusCode.Unauthenticated;
        return RpcErrors.Create(code, $"DPoP proof refused ({error}): {detail}", error.ToUpperInvariant());
    }
}
