using CredBroker.Core.Leases;
using Microsoft.Extensions.Logging;

namespace CredBroker.Server.Services;

/// <summary>
/// ListLeases / ListApprovals answered with partial results (a lost Redis Cluster master): one
/// warning per distinct set of unreachable shards (not one per call while the same master is down),
/// and an information line once a listing is complete again.
/// </summary>
public sealed partial class PartialListings(ILogger<PartialListings> logger)
{
    private readonly Lock _gate = new();
    private string _last = string.Empty;

    /// <summary>
    /// Notes the page's unreachable shards (logs when the set changed) and returns them for the response.
    /// Only a first page of every agent (<paramref name="readsEveryShard"/>) says the listing is complete
    /// again: a one-agent listing or a later page reads only some shards.
    /// </summary>
    public IReadOnlyList<int> Observe(string operation, LeasePage page, bool readsEveryShard)
    {
        var set = string.Join(",", page.UnreachableShards);
        lock (_gate)
        {
            if (set == _last || (set.Length == 0 && !readsEveryShard))
            {
                return page.UnreachableShards;
            }

            _last = set;
        }

        if (set.Length > 0)
        {
            Incomplete(logger, operation, set);
        }
        else
        {
            Complete(logger, operation);
        }

        return page.UnreachableShards;
    }

    [LoggerMessage(EventId = 130, Level = LogLevel.Warning,
        Message = "{Operation} answered with partial results: lease shards {Shards} could not be read (a lost Redis master); their leases and approvals are missing from the list")]
    private static partial void Incomplete(ILogger logger, string operation, string shards);

    [LoggerMessage(EventId = 131, Level = LogLevel.Information, Message = "{Operation} reads every lease shard again: listings are complete")]
    private static partial void Complete(ILogger logger, string operation);
}
