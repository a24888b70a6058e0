using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Grpc.Core;
using StackExchange.Redis;

namespace CredBroker.Server.Tests;

/// <summary>Redis going away: the broker fails closed (UNAVAILABLE, no token), writes nothing half-way, and recovers.</summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisOutageTests
{
    private const string Triage = "system:serviceaccount:support:triage";

    [Test]
    public async Task RedisDown_BeginTaskIsUnavailableWithoutToken_AndWorksAgainAfterRestart()
    {
        using var redis = RedisServer.Start(appendOnly: true);
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var client = broker.ClientFor(Triage);
        using var http = new HttpClient { BaseAddress = broker.HttpAddress };
        var before = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "before-outage", Scopes = { "tickets:read" } });

        redis.Kill();
        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "during-outage", Scopes = { "tickets:read" } }));
        var introspect = Assert.ThrowsAsync<RpcException>(() => client.IntrospectAsync(before.AccessToken));
        // /readyz serves the state the background refresh keeps: wait (bounded) for the refresh that saw Redis go.
        var readiness = await Readyz.WithinAsync(http, System.Net.HttpStatusCode.ServiceUnavailable);

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
        Assert.That(error.Detail, Does.Contain("unavailable"));
        Assert.That(introspect!.StatusCode, Is.EqualTo(StatusCode.Unavailable), "a validator is told the broker cannot answer, not that the token is fine");
        Assert.That((int)readiness, Is.EqualTo(503));

        redis.Restart();
        using (var direct = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            var server = direct.GetServer(direct.GetEndPoints()[0]);
            // The lease id of a task is derived from (agent, task): nothing may exist under it, nor in any index.
            var leaseId = CredBroker.Core.Leases.LeaseIds.For("triage-agent", "during-outage");
            var mentions = new List<string>();
            foreach (var key in server.Keys(pattern: "cb:*"))
            {
                var type = await direct.GetDatabase().KeyTypeAsync(key);
                var hit = ((string)key!).Contains(leaseId, StringComparison.Ordinal)
                    || (type == RedisType.SortedSet && await direct.GetDatabase().SortedSetScoreAsync(key, leaseId) is not null);
                if (hit)
                {
                    mentions.Add(key!);
                }
            }

            Assert.That(mentions, Is.Empty, "nothing of the failed request was written");
        }

        var after = await Unavailable.RetryAsync(() => client.BeginTaskAsync(new BeginTaskRequest { TaskId = "during-outage", Scopes = { "tickets:read" } }));
        Assert.That(after.AccessToken, Is.Not.Empty);
        Assert.That((await client.IntrospectAsync(before.AccessToken)).Active, Is.True, "the lease from before the outage survived in the AOF");
    }

    [Test]
    public void ProductionMode_WithoutRedisKeysAgentsOrIssuers_RefusesToStartAndSaysWhat()
    {
        var error = Assert.Throws<CredBroker.Server.Hosting.StartupException>(() => CredBroker.Server.Hosting.BrokerApp.Create([], TextWriter.Null));

        Assert.That(error!.Message, Does.Contain("CredBroker:Redis:Configuration")
            .And.Contain("CredBroker:Signing:KeyFiles")
            .And.Contain("CredBroker:AgentsFile")
            .And.Contain("CredBroker:Identity:Issuers"));
    }
}
