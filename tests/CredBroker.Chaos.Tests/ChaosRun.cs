using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Validation;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace CredBroker.Chaos.Tests;

/// <summary>How long and how hard one run goes.</summary>
public sealed record ChaosOptions
{
    /// <summary>How long clients and the nemesis run (then faults heal and the checker runs).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(40);

    /// <summary>Concurrent client loops.</summary>
    public int Clients { get; init; } = 3;

    /// <summary>An upper bound on client operations (the run stops at whichever comes first).</summary>
    public int MaxOperations { get; init; } = 5000;

    /// <summary>Broker replicas with a true clock (one more runs with <see cref="Skew"/>).</summary>
    public int Replicas { get; init; } = 2;

    /// <summary>The skewed replica's wall clock offset (libfaketime).</summary>
    public TimeSpan Skew { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Client loops asking for approvals (an operator loop decides them).</summary>
    public int ApprovalClients { get; init; } = 2;

    public int Seed { get; init; } = Environment.TickCount;
}

/// <summary>
/// One chaos run on one topology: broker replicas as real processes (one with a skewed clock), an
/// offline validator following WatchRevocations, clients driving mixed load and recording what they
/// were told, and a nemesis injecting faults on a schedule. <see cref="RunAsync"/> returns the
/// history; <see cref="Checker"/> judges it against the live system afterwards.
/// </summary>
public sealed partial class ChaosRun : IAsyncDisposable
{
    public const int AgentCount = 5;
    public const string QuarantineAgent = "chaos-q";
    private const string Downstream = "system:serviceaccount:apis:tickets";

    private readonly Topology _topology;
    private readonly ChaosOptions _options;
    private readonly Random _random;
    private readonly ProductionBroker _files;
    private readonly List<Replica> _replicas = [];
    private readonly History _history = new();
    private readonly object _nemesisGate = new();
    private HttpClient? _jwksHttp;
    private int _operations;

    public ChaosRun(Topology topology, ChaosOptions options)
    {
        _topology = topology;
        _options = options;
        _random = new Random(options.Seed);
        _files = new ProductionBroker(AgentsYaml);
    }

    public History History => _history;

    public Topology Topology => _topology;

    public ChaosOptions Options => _options;

    public IReadOnlyList<Replica> Replicas => _replicas;

    public ProductionBroker Files => _files;

    /// <summary>The offline validator (JWKS + revocation feed from replica 0).</summary>
    public AccessTokenValidator Validator { get; private set; } = null!;

    public RevocationSync ValidatorSync { get; private set; } = null!;

    private CancellationTokenSource? _validatorStop;
    private Task? _validatorTask;

    public static string AgentId(int i) => i < AgentCount ? $"chaos-{i}" : QuarantineAgent;

    public static string Subject(int i) => $"system:serviceaccount:chaos:{AgentId(i)}";

    private static string AgentsYaml => PolicySettingsYaml + "agents:\n" + string.Concat(Enumerable.Range(0, AgentCount + 1).Select(i => $"""
          - id: {AgentId(i)}
            owner: chaos-{i}@example.com
            purpose: chaos run
            audiences: [tickets-api]
            allowed_scopes: [tickets:read, tickets:comment]
            max_token_ttl: 5m
            max_lease_lifetime: 30m

        """ + ApprovalScopesYaml));

    private string[] BrokerArguments => Enumerable.Range(0, AgentCount + 1).SelectMany(i => new[]
    {
        $"--CredBroker:Identity:Issuers:0:Workloads:{3 + i}:Subject={Subject(i)}",
        $"--CredBroker:Identity:Issuers:0:Workloads:{3 + i}:Agent={AgentId(i)}",
    }).Concat(_topology.BrokerArguments).ToArray();

    /// <summary>Starts the replicas and the validator, runs clients and nemesis for the duration, heals everything.</summary>
    public async Task<History> RunAsync()
    {
        for (var i = 0; i < _options.Replicas; i++)
        {
            _replicas.Add(new Replica($"r{i}", await _files.StartReplicaProcessAsync(_topology.Configuration, BrokerArguments), _files, skewed: false));
        }

        _replicas.Add(new Replica("skewed", await _files.StartReplicaProcessAsync(_topology.Configuration, BrokerProcess.SkewedClock(_options.Skew), BrokerArguments), _files, skewed: true));
        _history.Faults.Enqueue(new FaultRecord($"replica clock {(_options.Skew >= TimeSpan.Zero ? "+" : "")}{_options.Skew.TotalSeconds:0} s (libfaketime), whole run", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow));
        await StartValidatorAsync();

        using var stop = new CancellationTokenSource(_options.Duration);
        var clients = Enumerable.Range(0, _options.Clients).Select(i => ClientLoopAsync(i, stop.Token)).ToList();
        var quarantines = QuarantineLoopAsync(stop.Token);
        var approvals = Enumerable.Range(0, _options.ApprovalClients).Select(i => ApprovalClientLoopAsync(i, stop.Token)).Append(ApprovalOperatorLoopAsync(stop.Token)).ToList();
        var nemesis = NemesisLoopAsync(stop.Token);
        await Task.WhenAll([.. clients, .. approvals, quarantines, nemesis]);
        await HealAsync();
        return _history;
    }

    private readonly HashSet<Replica> _exitNoted = [];

    /// <summary>
    /// Records a replica found not running outside a broker fault (it stopped by itself, or the nemesis could not
    /// restart it; nothing may stop the host): a finding with its exit code and the end of its output, once per exit.
    /// </summary>
    private void NoteExits()
    {
        foreach (var replica in _replicas)
        {
            if (!replica.Process.HasExited)
            {
                _exitNoted.Remove(replica);
            }
            else if (_exitNoted.Add(replica))
            {
                var output = replica.Process.Output;
                _history.Findings.Enqueue($"replica {replica.Name} found not running at {DateTimeOffset.UtcNow:HH:mm:ss} (exit code {replica.Process.ExitCode}): …{output[Math.Max(0, output.Length - 1500)..]}");
            }
        }
    }

    /// <summary>Every replica running and not paused (after the nemesis stopped).</summary>
    public async Task HealAsync()
    {
        NoteExits();
        foreach (var replica in _replicas)
        {
            replica.Process.Resume();
            if (replica.Process.HasExited)
            {
                try
                {
                    await replica.Process.RestartAsync();
                }
                catch (InvalidOperationException e)
                {
                    _history.Findings.Enqueue($"replica {replica.Name} did not become ready again after the run: {FirstLines(e.Message)}");
                }
            }
        }
    }

    private async Task StartValidatorAsync()
    {
        _jwksHttp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_replicas[0].Process.HttpPort}") };
        var keys = new JwksCache(ct => _jwksHttp.GetStringAsync("/.well-known/jwks.json", ct));
        await keys.RefreshAsync();
        ValidatorSync = new RevocationSync(new BrokerRevocationFeed(_replicas[0].ClientFor(Downstream)), new DenyList(), TimeProvider.System);
        Validator = new AccessTokenValidator(new TokenValidationOptions
        {
            Issuer = _files.HttpAddress.ToString().TrimEnd('/'),
            Audience = "tickets-api",
            // Every process here shares one machine clock: the validator's leeway is the brokers' clock bound, so
            // "accepted after the deadline" is judged as tightly offline as on the replicas.
            MaxClockSkew = Checker.ClockBound,
        }, keys, ValidatorSync);
        RestartValidatorStream();
    }

    private void RestartValidatorStream()
    {
        _validatorStop = new CancellationTokenSource();
        _validatorTask = ValidatorSync.RunAsync(_validatorStop.Token);
    }

    private async Task CutValidatorStreamAsync()
    {
        if (_validatorStop is not null)
        {
            await _validatorStop.CancelAsync();
            await _validatorTask!;
            _validatorStop.Dispose();
            _validatorStop = null;
        }
    }

    private Replica AnyReplica() => _replicas[_random.Next(_replicas.Count)];

    private async Task ClientLoopAsync(int index, CancellationToken stop)
    {
        var random = new Random(_options.Seed + index + 1);
        var task = 0;
        while (!stop.IsCancellationRequested && Interlocked.Increment(ref _operations) <= _options.MaxOperations)
        {
            var agent = random.Next(AgentCount + 1);
            var replica = _replicas[random.Next(_replicas.Count)];
            var client = replica.ClientFor(Subject(agent));
            var taskId = $"c{index}-{task++}-{Guid.NewGuid():N}"[..24];
            var begun = await CallAsync("BeginTask", replica, () => client.BeginTaskAsync(new BeginTaskRequest
            {
                TaskId = taskId,
                Scopes = { "tickets:read" },
                Audience = "tickets-api",
                Ttl = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(random.Next(1500, 4000))),
            }));
            if (begun is null || begun.AccessToken.Length == 0)
            {
                await Task.Delay(random.Next(20, 100), CancellationToken.None);
                continue;
            }

            var lease = _history.Leases.GetOrAdd(begun.LeaseId, id => new LeaseRecord(id, AgentId(agent), DateTimeOffset.UtcNow, begun.LeaseDeadline.ToDateTimeOffset()));
            Record(begun.LeaseId, AgentId(agent), begun.AccessToken, begun.TokenId, begun.TokenExpiresAt.ToDateTimeOffset());

            for (var step = random.Next(0, 4); step > 0 && !stop.IsCancellationRequested; step--)
            {
                replica = _replicas[random.Next(_replicas.Count)];
                client = replica.ClientFor(Subject(agent));
                switch (random.Next(4))
                {
                    case 0:
                        if (await CallAsync("IssueToken", replica, () => client.IssueTokenAsync(new IssueTokenRequest { LeaseId = lease.LeaseId, Scopes = { "tickets:read" } })) is { } issued)
                        {
                            Record(lease.LeaseId, lease.AgentId, issued.AccessToken, issued.TokenId, issued.TokenExpiresAt.ToDateTimeOffset());
                        }

                        break;
                    case 1:
                        if (await CallAsync("RenewLease", replica, () => client.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = lease.LeaseId, ExtendBy = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) })) is { } renewed)
                        {
                            lock (lease)
                            {
                                var deadline = renewed.LeaseDeadline.ToDateTimeOffset();
                                lease.Deadline = deadline > lease.Deadline ? deadline : lease.Deadline;
                            }

                            Record(lease.LeaseId, lease.AgentId, renewed.AccessToken, renewed.TokenId, renewed.TokenExpiresAt.ToDateTimeOffset());
                        }

                        break;
                    default:
                        await IntrospectAsync(random);
                        break;
                }

                await Task.Delay(random.Next(50, 300), CancellationToken.None);
            }

            var end = random.Next(10);
            if (end < 4)
            {
                replica = _replicas[random.Next(_replicas.Count)];
                client = replica.ClientFor(Subject(agent));
                MarkEndSent(lease);
                // The client was told the lease's state: "completed", or the end it had already reached.
                if (await CallAsync("CompleteTask", replica, () => client.CompleteTaskAsync(lease.LeaseId)) is { } completed)
                {
                    Acknowledge(lease, completed.State);
                }
            }
            else if (end < 6)
            {
                replica = _replicas[random.Next(_replicas.Count)];
                MarkEndSent(lease);
                if (await CallAsync("RevokeLease", replica, () => replica.Operator.RevokeLeaseAsync(lease.LeaseId, "chaos")) is { } revoked)
                {
                    Acknowledge(lease, revoked.Lease.State);
                }
            }

            // else: left to expire at its deadline.
            await IntrospectAsync(random);
        }
    }

    private static string FirstLines(string text) => text.Length <= 600 ? text : text[..600] + "…";

    private static void Acknowledge(LeaseRecord lease, string state)
    {
        if (state is "completed" or "revoked" or "expired")
        {
            lock (lease)
            {
                lease.EndAcked ??= (state, DateTimeOffset.UtcNow);
            }
        }
    }

    private static void MarkEndSent(LeaseRecord lease)
    {
        lock (lease)
        {
            lease.EndSent ??= DateTimeOffset.UtcNow;
        }
    }

    private void Record(string leaseId, string agentId, string token, string jti, DateTimeOffset expires) =>
        _history.Tokens.Enqueue(new TokenRecord(leaseId, agentId, token, jti, DateTimeOffset.UtcNow, expires));

    private async Task IntrospectAsync(Random random)
    {
        var tokens = _history.Tokens.ToArray();
        if (tokens.Length == 0)
        {
            return;
        }

        var token = tokens[random.Next(Math.Max(0, tokens.Length - 200), tokens.Length)];
        var contact = ValidatorSync.CurrentAsOf;
        var valid = Validator.Validate(token.Token, DateTimeOffset.UtcNow).IsValid;
        _history.Validations.Enqueue(new ValidationRecord(token, DateTimeOffset.UtcNow, valid, contact));
        var replica = _replicas[random.Next(_replicas.Count)];
        var sent = DateTimeOffset.UtcNow;
        if (await CallAsync("Introspect", replica, () => replica.ClientFor(Downstream).IntrospectAsync(token.Token)) is { } answer)
        {
            _history.Introspections.Enqueue(new IntrospectionRecord(token, replica.Name, sent, DateTimeOffset.UtcNow, answer.Active));
        }
    }

    /// <summary>Quarantines and releases the quarantine agent every few seconds, recording what the operator was told.</summary>
    private async Task QuarantineLoopAsync(CancellationToken stop)
    {
        var random = new Random(_options.Seed - 1);
        while (!stop.IsCancellationRequested)
        {
            await Delay(TimeSpan.FromMilliseconds(random.Next(2000, 4000)), stop);
            if (stop.IsCancellationRequested)
            {
                break;
            }

            var replica = _replicas[random.Next(_replicas.Count)];
            var sent = DateTimeOffset.UtcNow;
            var acked = await CallAsync("QuarantineAgent", replica, () => replica.Operator.QuarantineAgentAsync(QuarantineAgent, "chaos")) is not null;
            _history.Quarantines.Enqueue(new QuarantineRecord(QuarantineAgent, sent, acked ? DateTimeOffset.UtcNow : null));
            await Delay(TimeSpan.FromMilliseconds(random.Next(300, 1000)), stop);
            for (var attempt = 0; attempt < 50; attempt++)
            {
                replica = _replicas[random.Next(_replicas.Count)];
                if (await CallAsync("ReleaseAgent", replica, () => replica.Operator.ReleaseAgentAsync(QuarantineAgent)) is not null)
                {
                    break;
                }

                await Task.Delay(100, CancellationToken.None);
            }
        }
    }

    private async Task NemesisLoopAsync(CancellationToken stop)
    {
        string[] kinds = ["broker kill -9 + restart", "broker SIGSTOP/SIGCONT", .. _topology.RedisFaultKinds, "validator stream cut + restore"];
        var next = 0;
        while (!stop.IsCancellationRequested)
        {
            await Delay(TimeSpan.FromMilliseconds(_random.Next(1000, 2000)), stop);
            if (stop.IsCancellationRequested)
            {
                break;
            }

            NoteExits();
            // Every kind in turn (Redis first: the fault that matters most comes even in the shortest run).
            var kind = kinds[(2 + next++) % kinds.Length];
            var hold = TimeSpan.FromMilliseconds(_random.Next(1000, 2500));
            var start = DateTimeOffset.UtcNow;
            try
            {
                switch (kind)
                {
                    case "broker kill -9 + restart":
                        var doomed = AnyReplica();
                        doomed.Process.Kill();
                        await Task.Delay(hold, CancellationToken.None);
                        await doomed.Process.RestartAsync();
                        break;
                    case "broker SIGSTOP/SIGCONT":
                        var paused = AnyReplica();
                        paused.Process.Pause();
                        await Task.Delay(hold, CancellationToken.None);
                        paused.Process.Resume();
                        break;
                    case "validator stream cut + restore":
                        await CutValidatorAsync(hold);
                        break;
                    default:
                        await _topology.InjectRedisFaultAsync(kind, _random, hold, CancellationToken.None);
                        break;
                }
            }
            catch (Exception e) when (e is InvalidOperationException or IOException)
            {
                _history.Findings.Enqueue($"{kind} at {start:HH:mm:ss.fff}: did not heal cleanly: {FirstLines(e.Message)}");
            }

            _history.Faults.Enqueue(new FaultRecord(kind, start, DateTimeOffset.UtcNow));
        }
    }

    /// <summary>
    /// Cuts the validator's stream; while it is cut, one lease is begun and revoked (acknowledged); after the
    /// restore, measures how long until the validator rejects that lease's token.
    /// </summary>
    private async Task CutValidatorAsync(TimeSpan hold)
    {
        await CutValidatorStreamAsync();
        var replica = _replicas[1 % _replicas.Count];
        var revokedAt = DateTimeOffset.MinValue;
        BeginTaskResponse? begun = null;
        try
        {
            begun = await replica.ClientFor(Subject(0)).BeginTaskAsync(new BeginTaskRequest
            {
                TaskId = "cut-" + Guid.NewGuid().ToString("N")[..16],
                Scopes = { "tickets:read" },
                Audience = "tickets-api",
                Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(20)),
            });
            await replica.Operator.RevokeLeaseAsync(begun.LeaseId, "revoked while the validator was cut off");
            revokedAt = DateTimeOffset.UtcNow;
        }
        catch (RpcException)
        {
            begun = null;
        }

        await Task.Delay(hold, CancellationToken.None);
        var restored = DateTimeOffset.UtcNow;
        RestartValidatorStream();
        if (begun is null)
        {
            return;
        }

        var lease = _history.Leases.GetOrAdd(begun.LeaseId, id => new LeaseRecord(id, AgentId(0), restored, begun.LeaseDeadline.ToDateTimeOffset()));
        lease.EndSent = revokedAt;
        lease.EndAcked = ("revoked", revokedAt);
        Record(begun.LeaseId, AgentId(0), begun.AccessToken, begun.TokenId, begun.TokenExpiresAt.ToDateTimeOffset());
        while (Validator.Validate(begun.AccessToken, DateTimeOffset.UtcNow).Error != TokenErrors.Revoked)
        {
            if (DateTimeOffset.UtcNow - restored > TimeSpan.FromSeconds(15))
            {
                _history.ValidatorMisses.Enqueue($"lease {begun.LeaseId}: not rejected 15 s after the stream was restored");
                return;
            }

            await Task.Delay(5, CancellationToken.None);
        }

        _history.ValidatorCatchUp.Enqueue(DateTimeOffset.UtcNow - restored);
    }

    private async Task<T?> CallAsync<T>(string kind, Replica replica, Func<Task<T>> call)
        where T : class
    {
        var sent = DateTimeOffset.UtcNow;
        try
        {
            var result = await call();
            _history.Calls.Enqueue(new CallRecord(kind, replica.Name, sent, DateTimeOffset.UtcNow, StatusCode.OK));
            return result;
        }
        catch (RpcException e)
        {
            _history.Calls.Enqueue(new CallRecord(kind, replica.Name, sent, DateTimeOffset.UtcNow, e.StatusCode, e.Status.Detail));
            return null;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            _history.Calls.Enqueue(new CallRecord(kind, replica.Name, sent, DateTimeOffset.UtcNow, StatusCode.Unavailable));
            return null;
        }
    }

    private static async Task Delay(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, stop);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CutValidatorStreamAsync();
        foreach (var replica in _replicas)
        {
            replica.Dispose();
        }

        _jwksHttp?.Dispose();
        await _files.DisposeAsync();
    }

    /// <summary>One broker replica process and its clients (one per caller, reused).</summary>
    public sealed class Replica(string name, BrokerProcess process, ProductionBroker files, bool skewed) : IDisposable
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, CredBrokerClient> _clients = new();
        private CredBrokerOperatorClient? _operator;

        public string Name { get; } = name;

        public BrokerProcess Process { get; } = process;

        public bool Skewed { get; } = skewed;

        public CredBrokerClient ClientFor(string subject) =>
            _clients.GetOrAdd(subject, s => new CredBrokerClient(Process.AgentAddress, () => files.WorkloadToken(s)) { Timeout = TimeSpan.FromSeconds(3) });

        public CredBrokerOperatorClient Operator => _operator ??= new CredBrokerOperatorClient(Process.OperatorAddress,
            () => files.WorkloadToken(ProductionBroker.Operator, audience: ProductionBroker.OperatorAudience)) { Timeout = TimeSpan.FromSeconds(3) };

        public void Dispose()
        {
            foreach (var client in _clients.Values)
            {
                client.Dispose();
            }

            _operator?.Dispose();
            Process.Dispose();
        }
    }
}
