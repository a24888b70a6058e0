using System.Net;
using System.Text.Json;
using CredBroker.Contracts.V1;
using CredBroker.Client;
using Grpc.Core;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// /readyz and calls while redis-server is stopped (SIGSTOP: the socket stays open and nothing answers)
/// or killed: both the lease-store and the audit round trip give up within the Redis timeout, so
/// readiness says 503 and names both, and the broker answers UNAVAILABLE instead of hanging.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisReadinessTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    /// <summary>Far above the 1 s Redis timeout set below, far below "hangs": a hung probe fails the test instead of passing late.</summary>
    private static readonly TimeSpan ProbeLimit = TimeSpan.FromSeconds(20);

    [Test]
    public async Task RedisPaused_ReadyzAnswers503NamingStoreAndAudit_AndRecoversAfterResume()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString, "--CredBroker:Redis:Timeout=00:00:01");
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = ProbeLimit };
        using var client = broker.ClientFor(Triage);
        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));

        redis.Pause();
        try
        {
            // /readyz serves the state the background refresh keeps: a hanging check turns it 503 (stale)
            // within about two seconds, and the check that gives up after the Redis timeout names both stores.
            var (status, checks) = await ReadyzUntilAsync(http, c =>
                c.TryGetProperty("lease_store", out var s) && s.GetString()!.StartsWith("unreachable", StringComparison.Ordinal)
                && c.TryGetProperty("audit_log", out var a) && a.GetString()!.StartsWith("unreachable", StringComparison.Ordinal));
            using var limit = new CancellationTokenSource(ProbeLimit);
            var begin = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(
                new BeginTaskRequest { TaskId = "while-paused", Scopes = { "tickets:read" } }, limit.Token));

            Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(checks.GetProperty("lease_store").GetString(), Does.StartWith("unreachable"));
            Assert.That(checks.GetProperty("audit_log").GetString(), Does.StartWith("unreachable"));
            Assert.That(begin!.StatusCode, Is.EqualTo(StatusCode.Unavailable), "the store's timeout answers, not the caller's deadline");
        }
        finally
        {
            redis.Resume();
        }

        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task RedisKilled_ReadyzAnswers503_WithoutWaitingForATimeout()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = ProbeLimit };
        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));

        redis.Kill();

        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.ServiceUnavailable), Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        redis.Restart();
        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task RedisPaused_ReadyzTurns503WhileTheBackgroundCheckHangs()
    {
        // The Redis timeout (10 s) is far longer than the staleness bound: /readyz must not wait for it.
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString, "--CredBroker:Redis:Timeout=00:00:10");
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = ProbeLimit };
        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));

        redis.Pause();
        try
        {
            var (status, checks) = await ReadyzUntilAsync(http, c => c.TryGetProperty("readiness", out _));

            Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(checks.GetProperty("readiness").GetString(), Does.StartWith("stale"));
        }
        finally
        {
            redis.Resume();
        }

        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task ReadinessProbes_CostNoRedisRoundTrips()
    {
        // Issue 15 item 13 (b): unauthenticated probes must not load Redis; the state is refreshed in the background.
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = ProbeLimit };
        Assert.That(await Readyz.WithinAsync(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
        const int probes = 400;

        var before = await AuditHeadReadsAsync(redis);
        for (var i = 0; i < probes; i++)
        {
            using var response = await http.GetAsync("/readyz");
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        }

        var after = await AuditHeadReadsAsync(redis);

        // Before the fix every probe read the audit head (HMGET) and the store: at least one HMGET per probe.
        Assert.That(after - before, Is.LessThan(probes / 2), "probes are served from the cached state; only the background refresh reads Redis");
    }

    /// <summary>Polls /readyz until its checks satisfy <paramref name="until"/>; returns the last status and checks.</summary>
    private static async Task<(HttpStatusCode Status, JsonElement Checks)> ReadyzUntilAsync(HttpClient http, Func<JsonElement, bool> until)
    {
        var (status, body) = await Readyz.UntilAsync(http, (_, body) => until(Checks(body)));
        return (status, Checks(body));
    }

    private static JsonElement Checks(string body) => JsonDocument.Parse(body).RootElement.GetProperty("checks").Clone();

    /// <summary>How many HMGET commands the server has run (the audit head read of a readiness check).</summary>
    private static async Task<long> AuditHeadReadsAsync(RedisServer redis)
    {
        using var raw = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",allowAdmin=true");
        var info = (string)(await raw.GetDatabase().ExecuteAsync("INFO", "commandstats"))!;
        var line = info.Split('\n').FirstOrDefault(l => l.StartsWith("cmdstat_hmget:", StringComparison.Ordinal));
        if (line is null)
        {
            return 0;
        }

        var calls = line.Split(':', 2)[1].Split(',').First(p => p.StartsWith("calls=", StringComparison.Ordinal));
        return long.Parse(calls["calls=".Length..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
