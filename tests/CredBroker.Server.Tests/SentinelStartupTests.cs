using System.Net;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// A broker replica (a real process, production mode) whose first connections through Sentinel to the
/// primary fail — the primary is paused (SIGSTOP) or down while the replica starts — becomes ready by
/// itself once the Sentinel and the primary answer: nothing has to restart it.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SentinelStartupTests
{
    // The chaos run's Sentinel settings: every lease write and audit batch waits for the replica, so the replica
    // opens all of its Redis connections (lease store, audit log, each with a write-then-WAIT connection, the clock).
    private static readonly string[] Durable = ["--CredBroker:Redis:WaitReplicas=1", "--CredBroker:Redis:WaitForLeaseWrites=true", "--CredBroker:Redis:Timeout=00:00:01", "--CredBroker:Redis:WaitTimeout=00:00:00.500"];

    [TestCase("paused")] // SIGSTOP: sockets open, nothing answers
    [TestCase("down")] // kill -9: connections refused
    public async Task PrimaryAwayWhileTheReplicaStarts_ItBecomesReadyOnceThePrimaryIsBack(string away)
    {
        // Failure detection far beyond the outage: the Sentinel keeps the primary (no failover hides the case).
        using var set = RedisReplicaSet.Start(replicas: 1);
        set.StartSentinels(count: 1, quorum: 1, downAfterMilliseconds: 120_000);
        await using var files = new ProductionBroker();
        if (away == "paused")
        {
            set.Primary.Pause();
        }
        else
        {
            set.Primary.Kill();
        }

        using var broker = await files.LaunchReplicaProcessAsync(set.SentinelConfiguration, Durable);
        try
        {
            await BlockedAtStartAsync(broker);
        }
        finally
        {
            if (away == "paused")
            {
                set.Primary.Resume();
            }
            else
            {
                set.Primary.Restart();
            }
        }

        await ReadyWithinAsync(broker, TimeSpan.FromSeconds(60));
    }

    /// <summary>
    /// The chaos run's skewed replica (libfaketime, clock +3 s) through Sentinel. With libfaketime's "monotonic fix" on
    /// (its default with glibc) a timed wait shorter than the offset returns at once, so StackExchange.Redis gives up on
    /// the first discovery of the primary ("Sentinel: Failed connecting to configured primary for service") and that
    /// multiplexer never connects: the replica stayed not ready for good. <see cref="BrokerProcess.SkewedClock"/> now
    /// turns the fix off (first case); with it on (the fault, second case) the broker replaces the multiplexers that
    /// never connected (RedisMultiplexer) until one does, and becomes ready by itself.
    /// </summary>
    [TestCase("0")]
    [TestCase("1")]
    public async Task SkewedReplicaThroughSentinel_BecomesReady(string monotonicFix)
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        set.StartSentinels(count: 1, quorum: 1);
        await using var files = new ProductionBroker();
        var environment = new Dictionary<string, string>(BrokerProcess.SkewedClock(TimeSpan.FromSeconds(3))) { ["FAKETIME_FORCE_MONOTONIC_FIX"] = monotonicFix };
        using var broker = await files.LaunchReplicaProcessAsync(set.SentinelConfiguration, Durable, environment);
        await ReadyWithinAsync(broker, TimeSpan.FromSeconds(120));
    }

    /// <summary>
    /// The bounded fallback: a replica that has not been ready once within CredBroker:Health:StartupGrace fails
    /// /healthz (the orchestrator restarts it); once it has been ready, /healthz is 200 again and stays so.
    /// </summary>
    [Test]
    public async Task NeverReadyWithinTheStartupGrace_HealthzFails_UntilTheReplicaIsReady()
    {
        using var set = RedisReplicaSet.Start(replicas: 1);
        set.StartSentinels(count: 1, quorum: 1, downAfterMilliseconds: 120_000);
        await using var files = new ProductionBroker();
        set.Primary.Kill();
        using var broker = await files.LaunchReplicaProcessAsync(set.SentinelConfiguration, [.. Durable, "--CredBroker:Health:StartupGrace=00:00:10"]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{broker.HttpPort}"), Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            var (status, body) = await HealthzUntilAsync(broker, http, s => s == HttpStatusCode.ServiceUnavailable);
            Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable), "liveness fails once the grace has passed without readiness");
            Assert.That(body, Does.Contain("StartupGrace"));
        }
        finally
        {
            set.Primary.Restart();
        }

        await ReadyWithinAsync(broker, TimeSpan.FromSeconds(60));
        Assert.That((await HealthzUntilAsync(broker, http, s => s == HttpStatusCode.OK)).Status, Is.EqualTo(HttpStatusCode.OK));
        set.Primary.Kill();
        await Readyz.UntilAsync(http, (s, _) => s == HttpStatusCode.ServiceUnavailable);
        Assert.That((await http.GetAsync("/healthz")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "an outage after the start never fails liveness");
    }

    private static async Task<(HttpStatusCode Status, string Body)> HealthzUntilAsync(BrokerProcess broker, HttpClient http, Func<HttpStatusCode, bool> until)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        var last = (HttpStatusCode.BadGateway, "");
        while (DateTime.UtcNow < deadline && !broker.HasExited)
        {
            try
            {
                using var response = await http.GetAsync("/healthz");
                last = (response.StatusCode, await response.Content.ReadAsStringAsync());
                if (until(response.StatusCode))
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        return last;
    }

    /// <summary>Waits until the replica serves HTTP and its readiness checks have run against Redis (both stores connected or failed): not ready.</summary>
    private static async Task BlockedAtStartAsync(BrokerProcess broker)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{broker.HttpPort}"), Timeout = TimeSpan.FromSeconds(10) };
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            Assert.That(broker.HasExited, Is.False, "the replica exited while Redis was away: " + broker.Output);
            try
            {
                using var response = await http.GetAsync("/readyz");
                var body = await response.Content.ReadAsStringAsync();
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), "ready while the primary is away: " + body);
                if (body.Contains("\"lease_store\"", StringComparison.Ordinal) && body.Contains("\"audit_log\"", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the replica never ran its readiness checks: " + broker.Output);
            await Task.Delay(200);
        }
    }

    private static async Task ReadyWithinAsync(BrokerProcess broker, TimeSpan bound)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{broker.HttpPort}"), Timeout = TimeSpan.FromSeconds(10) };
        var deadline = DateTime.UtcNow + bound;
        var last = "";
        while (DateTime.UtcNow < deadline && !broker.HasExited)
        {
            try
            {
                using var response = await http.GetAsync("/readyz");
                last = await response.Content.ReadAsStringAsync();
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        var output = broker.Output;
        Assert.Fail($"the replica did not become ready by itself (exited: {broker.HasExited}); last /readyz: {last}; log tail: {output[Math.Max(0, output.Length - 6000)..]}");
    }
}
