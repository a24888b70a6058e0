using System.Net;
using System.Text.Json;
using CredBroker.Contracts.V1;
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
        Assert.That(await ReadyzWithin(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));

        redis.Pause();
        try
        {
            using var response = await http.GetAsync("/readyz");
            var checks = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("checks");
            using var limit = new CancellationTokenSource(ProbeLimit);
            var begin = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(
                new BeginTaskRequest { TaskId = "while-paused", Scopes = { "tickets:read" } }, limit.Token));

            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(checks.GetProperty("lease_store").GetString(), Does.StartWith("unreachable"));
            Assert.That(checks.GetProperty("audit_log").GetString(), Does.StartWith("unreachable"));
            Assert.That(begin!.StatusCode, Is.EqualTo(StatusCode.Unavailable), "the store's timeout answers, not the caller's deadline");
        }
        finally
        {
            redis.Resume();
        }

        Assert.That(await ReadyzWithin(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task RedisKilled_ReadyzAnswers503_WithoutWaitingForATimeout()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = ProbeLimit };
        Assert.That(await ReadyzWithin(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));

        redis.Kill();

        Assert.That(await ReadyzWithin(http, HttpStatusCode.ServiceUnavailable), Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        redis.Restart();
        Assert.That(await ReadyzWithin(http, HttpStatusCode.OK), Is.EqualTo(HttpStatusCode.OK));
    }

    /// <summary>Polls /readyz until it answers <paramref name="hoped"/> or 20 s pass; returns the last status.</summary>
    private static async Task<HttpStatusCode> ReadyzWithin(HttpClient http, HttpStatusCode hoped)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            using var response = await http.GetAsync("/readyz");
            if (response.StatusCode == hoped || DateTime.UtcNow > deadline)
            {
                return response.StatusCode;
            }

            await Task.Delay(100);
        }
    }
}
