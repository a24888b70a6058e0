using System.Globalization;
using System.Text.Json;
using CredBroker.Core.Leases;
using CredBroker.Core.Policy;
using StackExchange.Redis;

namespace CredBroker.Redis;

/// <summary>Script results ↔ Core types: a lease as a Redis hash (times in unix ms, scopes space-separated), a revocation event as a stream entry.</summary>
internal static class LeaseHash
{
    /// <summary>
    /// The field/value pairs of a new lease hash. Small hashes are listpacks that Redis scans in
    /// order, so the fields every transition reads and writes come first.
    /// </summary>
    public static RedisValue[] ToArgs(Lease l) =>
    [
        "state", l.State.ToWire(), "deadline", l.Deadline.ToUnixTimeMilliseconds(), "gen", l.Generation, "agent", l.AgentId, "task", l.TaskId,
        "max_deadline", l.MaxDeadline.ToUnixTimeMilliseconds(), "created", l.CreatedAt.ToUnixTimeMilliseconds(),
        "owner", l.Owner, "purpose", l.Purpose, "aud", l.Audience, "scopes", string.Join(' ', l.Scopes),
        .. Delegation(l),
        .. l.Context.Count > 0 ? new RedisValue[] { "ctx", ContextJson(l.Context) } : [],
        .. l.DpopKeyThumbprint is { } jkt ? new RedisValue[] { "jkt", jkt } : [],
        .. l.Approval is { } a
            ? new RedisValue[]
            {
                "ap_req", string.Join(' ', a.RequestedScopes), "ap_need", string.Join(' ', a.ApprovalScopes), "ap_ttl", (long)a.LeaseTtl.TotalMilliseconds, "ap_why", a.Reason,
                "ap_rules", string.Join(' ', a.RuleIds), "ap_by", a.DecidedBy ?? "", "ap_note", a.Note ?? "", "ap_ok", a.Approved switch { true => "1", false => "0", null => "" },
            }
            : [],
    ];

    /// <summary>The delegation fields, present only on delegated leases (chains are space-separated, nearest first).</summary>
    private static RedisValue[] Delegation(Lease l) => l.Subject is null
        ? []
        : ["subject", l.Subject, "actors", string.Join(' ', l.Actors), "parents", string.Join(' ', l.ParentLeaseIds)];

    /// <summary>The granted context as a JSON array of {key, value, source}.</summary>
    private static string ContextJson(IReadOnlyList<ContextLabel> context) =>
        JsonSerializer.Serialize(context.Select(c => new[] { c.Key, c.Value, c.Source }));

    private static IReadOnlyList<ContextLabel> Context(string? json) =>
        string.IsNullOrEmpty(json) ? [] : [.. JsonSerializer.Deserialize<string[][]>(json)!.Select(c => new ContextLabel(c[0], c[1], c[2]))];

    /// <summary>A flat HGETALL reply (field, value, field, value, ...) from a script.</summary>
    public static Lease FromFlat(string leaseId, RedisResult flat) => FromFlat(leaseId, (RedisResult[])flat!);

    public static Lease FromFlat(string leaseId, RedisResult[] flat) => FromFields(leaseId, Pairs(flat));

    /// <summary>An XRANGE entry {id, {field, value, ...}} of shard <paramref name="shard"/>.</summary>
    public static RevocationEvent EventFromEntry(int shard, RedisResult entry)
    {
        var parts = (RedisResult[])entry!;
        var f = Pairs((RedisResult[])parts[1]!);
        var leaseId = f["lease"];
        var taskId = f["task"];
        return new RevocationEvent(
            shard,
            LogPosition.Parse((string)parts[0]!),
            f["kind"] == "agent" ? RevocationKind.Agent : RevocationKind.Lease,
            leaseId.Length == 0 ? null : leaseId,
            f["agent"],
            taskId.Length == 0 ? null : taskId,
            RevocationCauseNames.FromWire(f["cause"]),
            f["reason"],
            f["actor"],
            Time(f["at"]),
            Time(f["not_after"]));
    }

    private static Dictionary<string, string> Pairs(RedisResult[] flat)
    {
        var fields = new Dictionary<string, string>(flat.Length / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < flat.Length; i += 2)
        {
            fields[(string)flat[i]!] = (string)flat[i + 1]!;
        }

        return fields;
    }

    private static Lease FromFields(string leaseId, Dictionary<string, string> f) => new()
    {
        LeaseId = leaseId,
        AgentId = f["agent"],
        TaskId = f["task"],
        Owner = f["owner"],
        Purpose = f["purpose"],
        Audience = f["aud"],
        Scopes = f["scopes"].Split(' ', StringSplitOptions.RemoveEmptyEntries),
        State = LeaseStateNames.FromWire(f["state"]),
        CreatedAt = Time(f["created"]),
        Deadline = Time(f["deadline"]),
        MaxDeadline = Time(f["max_deadline"]),
        Generation = long.Parse(f["gen"], CultureInfo.InvariantCulture),
        // A lease the sweeper expired ended at its deadline; the script does not spend a field on it.
        EndedAt = f.TryGetValue("ended", out var ended) ? Time(ended) : f["state"] == "expired" ? Time(f["deadline"]) : null,
        Subject = f.GetValueOrDefault("subject"),
        Actors = List(f.GetValueOrDefault("actors")),
        ParentLeaseIds = List(f.GetValueOrDefault("parents")),
        Context = Context(f.GetValueOrDefault("ctx")),
        DpopKeyThumbprint = f.GetValueOrDefault("jkt"),
        Approval = f.TryGetValue("ap_ttl", out var ttl) ? new LeaseApproval
        {
            RequestedScopes = f["ap_req"].Split(' ', StringSplitOptions.RemoveEmptyEntries),
            ApprovalScopes = f["ap_need"].Split(' ', StringSplitOptions.RemoveEmptyEntries),
            LeaseTtl = TimeSpan.FromMilliseconds(long.Parse(ttl, CultureInfo.InvariantCulture)),
            Reason = f["ap_why"],
            RuleIds = f["ap_rules"].Split(' ', StringSplitOptions.RemoveEmptyEntries),
            Approved = f.TryGetValue("ap_ok", out var ok) && ok.Length > 0 ? ok == "1" : null,
            DecidedBy = f.TryGetValue("ap_by", out var by) && by.Length > 0 ? by : null,
            Note = f.TryGetValue("ap_note", out var note) && note.Length > 0 ? note : null,
        } : null,
    };

    private static IReadOnlyList<string> List(string? spaced) =>
        string.IsNullOrEmpty(spaced) ? [] : spaced.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static DateTimeOffset Time(string ms) => DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(ms, CultureInfo.InvariantCulture));
}
