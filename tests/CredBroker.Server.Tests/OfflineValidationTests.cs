using System.Diagnostics;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Validation;

namespace CredBroker.Server.Tests;

/// <summary>
/// A downstream API's view: tokens validated offline (JWKS over HTTP) with the deny list kept by
/// the revocation feed. A revoke on the broker must reach the offline validator in milliseconds.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class OfflineValidationTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string TicketsApi = "system:serviceaccount:apis:tickets";

    [Test]
    public async Task RevokeOnTheBroker_IsSeenByAnOfflineValidator_WithinMilliseconds()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var agent = broker.ClientFor(Triage);
        using var operators = broker.OperatorClient();
        using var downstream = broker.ClientFor(TicketsApi);
        using var http = new HttpClient { BaseAddress = broker.HttpAddress };

        var keys = new JwksCache(ct => http.GetStringAsync("/.well-known/jwks.json", ct));
        await keys.RefreshAsync();
        var sync = new RevocationSync(new BrokerRevocationFeed(downstream), new DenyList(), TimeProvider.System);
        using var stop = new CancellationTokenSource();
        var following = sync.RunAsync(stop.Token);
        var validator = new AccessTokenValidator(new TokenValidationOptions { Issuer = broker.HttpAddress.ToString().TrimEnd('/'), Audience = "tickets-api" }, keys, sync);
        var caughtUp = Stopwatch.StartNew();
        while (!sync.IsSynced)
        {
            // Tokens are refused (revocations_not_synced) until the broker's first heartbeat.
            Assert.That(caughtUp.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)), "the revocation feed did not catch up");
            await Task.Delay(10);
        }

        var latencies = new List<TimeSpan>();
        for (var i = 0; i < 100; i++)
        {
            var begun = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = $"offline-{i}-{Guid.NewGuid():N}", Scopes = { "tickets:read" } });
            Assert.That(validator.Validate(begun.AccessToken, DateTimeOffset.UtcNow).IsValid, Is.True, "a fresh token validates offline");

            await operators.RevokeLeaseAsync(begun.LeaseId, "propagation test");
            var watch = Stopwatch.StartNew();
            while (validator.Validate(begun.AccessToken, DateTimeOffset.UtcNow).Error != TokenErrors.Revoked)
            {
                Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(15)), $"revocation {i} did not reach the validator (a generous bound: latency is measured in bench/)");
                await Task.Delay(1);
            }

            latencies.Add(watch.Elapsed);
        }

        latencies.Sort();
        TestContext.Out.WriteLine($"revoke acknowledged → offline validator rejects: p50 {latencies[49].TotalMilliseconds:0.0} ms, p99 {latencies[98].TotalMilliseconds:0.0} ms, max {latencies[^1].TotalMilliseconds:0.0} ms");
        Assert.That(sync.IsAvailable, Is.True);
        await stop.CancelAsync();
        await following;
    }
}
