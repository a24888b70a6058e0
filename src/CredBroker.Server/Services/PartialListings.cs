using CredBroker.Core.Leases;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Services;

/// <summary>
/// ListLeases / ListApprovals answered with partial results (a lost Redis Cluster master): one warning
/// when a listing first finds a shard unreachable (not one per call, nor per page, while the same master
/// is down), and an information line once a listing of every shard is complete again.
/// </summary>
public sealed partial class PartialListings(ILogger<PartialListings> logger)
{
    private readonly Lock _gate = new();
    private readonly SortedSet<int> _known = [];

    /// <summary>
    /// Notes the page's unreachable shards and returns them for the response. A page naming a shard not
    /// known to be unreachable logs a warning; only a page that read every shard (<paramref name="wholeListing"/>:
    /// no agent filter, no page token in or out) tells which shards are still unreachable (and that none is).
    /// </summary>
    public IReadOnlyList<int> Observe(string operation, LeasePage page, bool wholeListing)
    {
        var shards = page.UnreachableShards;
        bool warn = false, complete = false;
        lock (_gate)
        {
            if (shards.Any(s => !_known.Contains(s)))
            {
                warn = true;
                _known.UnionWith(shards);
            }

            if (wholeListing && page.NextPageToken is null && !_known.SetEquals(shards))
            {
                // Some shards are back: a later loss of them warns again.
                complete = shards.Count == 0;
                _known.Clear();
                _known.UnionWith(shards);
            }
        }

        if (warn)
        {
            Incomplete(logger, operation, string.Join(",", shards));
        }
        else if (complete)
        {
            Complete(logger, operation);
        }

        return shards;
    }

    [LoggerMessage(EventId = 130, Level = LogLevel.Warning,
        Message = "{Operation} answered with partial results: lease shards {Shards} could not be read (a lost Redis master); their leases and approvals are missing from the list")]
    private static partial void Incomplete(ILogger logger, string operation, string shards);

    [LoggerMessage(EventId = 131, Level = LogLevel.Information, Message = "{Operation} reads every lease shard again: listings are complete")]
    private static partial void Complete(ILogger logger, string operation);
}
