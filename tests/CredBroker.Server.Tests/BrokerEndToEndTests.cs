using System.Text.Json;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using StackExchange.Redis;

namespace CredBroker.Server.Tests;

/// <summary>The production-mode broker against a real Redis server, through our .NET client.</summary>
[TestFixture]
[NonParallelizable]
public sealed class BrokerEndToEndTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Billing = "system:serviceaccount:finance:billing";

    private RedisServer _redis = null!;
    private ProductionBroker _broker = null!;
    private ConnectionMultiplexer _redisClient = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _redis = RedisServer.Start();
        _broker = new ProductionBroker();
        await _broker.StartAsync(_redis.ConnectionString);
        _redisClient = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _redisClient.Dispose();
        await _broker.DisposeAsync();
        _redis.Dispose();
    }

    private static BeginTaskRequest Request(string? taskId = null, params string[] scopes) => new()
    {
        TaskId = taskId ?? "task-" + Guid.NewGuid().ToString("N"),
        Purpose = "triage ticket 42",
        Audience = "tickets-api",
        Scopes = { scopes.Length == 0 ? ["tickets:read"] : scopes },
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(2)),
    };

    [Test]
    public async Task BeginTask_LeaseIsInRedisWithDeadlineIndex_WhenTokenReturned()
    {
        using var client = _broker.ClientFor(Triage);

        var response = await client.BeginTaskAsync(Request());

        var db = _redisClient.GetDatabase();
        var shard = response.LeaseId.Substring(1, 2);
        var lease = await db.HashGetAllAsync($"cb:{{s{shard}}}:lease:{response.LeaseId}");
        var fields = lease.ToDictionary(e => (string)e.Name!, e => (string)e.Value!);
        Assert.That(fields["state"], Is.EqualTo("active"));
        Assert.That(fields["agent"], Is.EqualTo("triage-agent"));
        var score = await db.SortedSetScoreAsync($"cb:{{s{shard}}}:deadlines", response.LeaseId);
        Assert.That(score, Is.EqualTo((double)response.LeaseDeadline.ToDateTimeOffset().ToUnixTimeMilliseconds()).Within(1000));
    }

    [Test]
    public async Task BeginTask_TokenExpiresNoLaterThanLeaseDeadline()
    {
        using var client = _broker.ClientFor(Triage);

        var shortLease = await client.BeginTaskAsync(Request());
        var req = Request();
        req.Ttl = Duration.FromTimeSpan(TimeSpan.FromSeconds(30));
        var veryShort = await client.BeginTaskAsync(req);

        Assert.That(shortLease.TokenExpiresAt.ToDateTimeOffset(), Is.LessThanOrEqualTo(shortLease.LeaseDeadline.ToDateTimeOffset()));
        Assert.That(veryShort.TokenExpiresAt.ToDateTimeOffset(), Is.LessThanOrEqualTo(veryShort.LeaseDeadline.ToDateTimeOffset()));
        var claims = Payload(veryShort.AccessToken);
        Assert.That(claims.GetProperty("exp").GetInt64(), Is.LessThanOrEqualTo(veryShort.LeaseDeadline.ToDateTimeOffset().ToUnixTimeSeconds()));
        Assert.That(claims.GetProperty("sub").GetString(), Is.EqualTo("triage-agent"));
        Assert.That(claims.GetProperty("aud").GetString(), Is.EqualTo("tickets-api"));
        Assert.That(claims.GetProperty("owner").GetString(), Is.EqualTo("support-team@example.com"));
        Assert.That(claims.GetProperty("lease_id").GetString(), Is.EqualTo(veryShort.LeaseId));
    }

    [Test]
    public async Task BeginTask_LeaseTtlBeyondAgentMax_IsCappedToMaxLeaseLifetime()
    {
        using var client = _broker.ClientFor(Triage);
        var req = Request();
        req.Ttl = Duration.FromTimeSpan(TimeSpan.FromHours(5));

        var response = await client.BeginTaskAsync(req);

        Assert.That(response.LeaseDeadline.ToDateTimeOffset(), Is.LessThanOrEqualTo(DateTimeOffset.UtcNow.AddMinutes(30).AddSeconds(5)));
        Assert.That(response.TokenExpiresAt.ToDateTimeOffset(), Is.LessThanOrEqualTo(DateTimeOffset.UtcNow.AddMinutes(5).AddSeconds(5)));
    }

    [Test]
    public async Task CompleteTask_ThenIntrospect_IsInactive()
    {
        using var client = _broker.ClientFor(Triage);
        var begun = await client.BeginTaskAsync(Request());
        Assert.That((await client.IntrospectAsync(begun.AccessToken)).Active, Is.True);

        var completed = await client.CompleteTaskAsync(begun.LeaseId);
        var introspection = await client.IntrospectAsync(begun.AccessToken);

        Assert.That(completed.State, Is.EqualTo("completed"));
        Assert.That(introspection.Active, Is.False);
        Assert.That(introspection.Scope, Is.Empty, "an inactive token reveals no claims");
    }

    [Test]
    public async Task CompleteTask_Twice_IsIdempotent()
    {
        using var client = _broker.ClientFor(Triage);
        var begun = await client.BeginTaskAsync(Request());

        await client.CompleteTaskAsync(begun.LeaseId);
        var again = await client.CompleteTaskAsync(begun.LeaseId);

        Assert.That(again.State, Is.EqualTo("completed"));
    }

    [Test]
    public async Task BeginTask_SameTaskIdTwice_ReturnsTheSameLease()
    {
        using var client = _broker.ClientFor(Triage);
        var request = Request();

        var first = await client.BeginTaskAsync(request);
        var second = await client.BeginTaskAsync(request);

        Assert.That(second.LeaseId, Is.EqualTo(first.LeaseId));
        Assert.That(second.LeaseDeadline, Is.EqualTo(first.LeaseDeadline));
        Assert.That(Payload(second.AccessToken).GetProperty("jti").GetString(), Is.Not.EqualTo(Payload(first.AccessToken).GetProperty("jti").GetString()));
    }

    [Test]
    public async Task BeginTask_SameTaskIdWithOtherScopes_IsAlreadyExists()
    {
        using var client = _broker.ClientFor(Triage);
        var request = Request();
        await client.BeginTaskAsync(request);
        var other = request.Clone();
        other.Scopes.Add("kb:read");

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(other));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.AlreadyExists));
        Assert.That(error.Detail, Does.Contain(request.TaskId));
    }

    [Test]
    public async Task BeginTask_SameTaskIdAfterCompletion_IsFailedPrecondition()
    {
        using var client = _broker.ClientFor(Triage);
        var request = Request();
        var begun = await client.BeginTaskAsync(request);
        await client.CompleteTaskAsync(begun.LeaseId);

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(request));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
    }

    [TestCase("tickets:delete", "disallowed")]
    [TestCase("admin:everything", "not in agent 'triage-agent''s allowed scopes")]
    public void BeginTask_ScopeOutsideAgentPolicy_IsPermissionDeniedNamingTheScope(string scope, string reason)
    {
        using var client = _broker.ClientFor(Triage);

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request(null, "tickets:read", scope)));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(error.Detail, Does.Contain($"'{scope}'").And.Contain(reason));
    }

    [TestCase("", "task_id is required")]
    [TestCase("bad task id", "task_id must be")]
    public void BeginTask_BadTaskId_IsInvalidArgument(string taskId, string message)
    {
        using var client = _broker.ClientFor(Triage);
        var request = Request();
        request.TaskId = taskId;

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(request));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.That(error.Detail, Does.Contain(message));
    }

    [Test]
    public void BeginTask_WildcardScope_IsInvalidArgument()
    {
        using var client = _broker.ClientFor(Triage);

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request(null, "tickets:*")));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.That(error.Detail, Does.Contain("tickets:*"));
    }

    [Test]
    public void BeginTask_AudienceOfAnotherApi_IsPermissionDenied()
    {
        using var client = _broker.ClientFor(Triage);
        var request = Request();
        request.Audience = "billing-api";

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(request));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(error.Detail, Does.Contain("billing-api"));
    }

    [Test]
    public async Task IssueToken_NarrowsToASubsetAndAnotherAudience()
    {
        using var client = _broker.ClientFor(Triage);
        var begun = await client.BeginTaskAsync(Request(null, "tickets:read", "kb:read"));

        var issued = await client.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId, Scopes = { "kb:read" }, Audience = "kb-api" });

        var claims = Payload(issued.AccessToken);
        Assert.That(claims.GetProperty("scope").GetString(), Is.EqualTo("kb:read"));
        Assert.That(claims.GetProperty("aud").GetString(), Is.EqualTo("kb-api"));
        var wider = Assert.ThrowsAsync<RpcException>(() => client.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId, Scopes = { "tickets:comment" } }));
        Assert.That(wider!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
    }

    [Test]
    public async Task RenewLease_ExtendsDeadlineAndReturnsAFreshToken()
    {
        using var client = _broker.ClientFor(Triage);
        var req = Request();
        req.Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(1));
        var begun = await client.BeginTaskAsync(req);

        var renewed = await client.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId, ExtendBy = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) });

        Assert.That(renewed.LeaseDeadline.ToDateTimeOffset(), Is.GreaterThan(begun.LeaseDeadline.ToDateTimeOffset().AddMinutes(5)));
        Assert.That(renewed.TokenExpiresAt.ToDateTimeOffset(), Is.LessThanOrEqualTo(renewed.LeaseDeadline.ToDateTimeOffset()));
        Assert.That((await client.IntrospectAsync(renewed.AccessToken)).Active, Is.True);
    }

    [Test]
    public async Task LeaseOfAnotherAgent_IsNotFound()
    {
        using var triage = _broker.ClientFor(Triage);
        using var billing = _broker.ClientFor(Billing);
        var begun = await triage.BeginTaskAsync(Request());

        var complete = Assert.ThrowsAsync<RpcException>(() => billing.CompleteTaskAsync(begun.LeaseId));
        var issue = Assert.ThrowsAsync<RpcException>(() => billing.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId }));

        Assert.That(complete!.StatusCode, Is.EqualTo(StatusCode.NotFound));
        Assert.That(issue!.StatusCode, Is.EqualTo(StatusCode.NotFound));
        Assert.That((await triage.IntrospectAsync(begun.AccessToken)).Active, Is.True, "the other agent changed nothing");
    }

    [Test]
    public void UnknownLeaseId_IsNotFound()
    {
        using var client = _broker.ClientFor(Triage);

        var error = Assert.ThrowsAsync<RpcException>(() => client.CompleteTaskAsync("l00_aaaaaaaaaaaaaaaaaaaaaaaaaa"));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.NotFound));
    }

    [Test]
    public void NoCredential_IsUnauthenticated()
    {
        using var client = _broker.ClientWithCredential("");

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request()));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
    }

    [Test]
    public void ExpiredWorkloadCredential_IsUnauthenticated()
    {
        using var client = _broker.ClientWithCredential(_broker.WorkloadToken(Triage, lifetime: TimeSpan.FromMinutes(-5)));

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request()));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        Assert.That(error.Detail, Does.Contain("expired"));
    }

    [Test]
    public void WorkloadCredentialForAnotherAudience_IsUnauthenticated()
    {
        using var client = _broker.ClientWithCredential(_broker.WorkloadToken(Triage, audience: "someone-else"));

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request()));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        Assert.That(error.Detail, Does.Contain("audience"));
    }

    [Test]
    public void WorkloadCredentialFromUntrustedIssuer_IsUnauthenticated()
    {
        using var rogue = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using var client = _broker.ClientWithCredential(_broker.WorkloadToken(Triage, issuer: "https://rogue.test", key: rogue));

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request()));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
        Assert.That(error.Detail, Does.Contain("not a trusted"));
    }

    [Test]
    public void WorkloadCredentialSignedByAnotherKey_IsUnauthenticated()
    {
        using var rogue = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using var client = _broker.ClientWithCredential(_broker.WorkloadToken(Triage, key: rogue));

        var error = Assert.ThrowsAsync<RpcException>(() => client.BeginTaskAsync(Request()));

        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated));
    }

    [Test]
    public async Task DownstreamWorkloadWithoutAgent_CanIntrospectButNotBeginTasks()
    {
        using var agent = _broker.ClientFor(Triage);
        using var api = _broker.ClientFor("system:serviceaccount:apis:tickets");
        var begun = await agent.BeginTaskAsync(Request());

        var introspection = await api.IntrospectAsync(begun.AccessToken);
        var error = Assert.ThrowsAsync<RpcException>(() => api.BeginTaskAsync(Request()));

        Assert.That(introspection.Active, Is.True);
        Assert.That(introspection.Sub, Is.EqualTo("triage-agent"));
        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
    }

    [TestCase("not-a-jwt")]
    [TestCase("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")]
    public async Task Introspect_GarbageToken_IsInactive(string token)
    {
        using var client = _broker.ClientFor(Triage);

        var result = await client.IntrospectAsync(token);

        Assert.That(result.Active, Is.False);
    }

    [Test]
    public async Task Introspect_TamperedToken_IsInactive()
    {
        using var client = _broker.ClientFor(Triage);
        var begun = await client.BeginTaskAsync(Request());
        var parts = begun.AccessToken.Split('.');
        var payload = System.Text.Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1])).Replace("tickets:read", "tickets:rite");
        var forged = parts[0] + "." + System.Buffers.Text.Base64Url.EncodeToString(System.Text.Encoding.UTF8.GetBytes(payload)) + "." + parts[2];

        Assert.That((await client.IntrospectAsync(forged)).Active, Is.False);
    }

    [Test]
    public async Task JwksEndpoint_MatchesGetSigningKeysAndOpenIdConfiguration()
    {
        using var client = _broker.ClientFor(Triage);
        using var http = new HttpClient { BaseAddress = _broker.HttpAddress };

        var jwks = await http.GetStringAsync("/.well-known/jwks.json");
        var keys = await client.GetSigningKeysAsync();
        using var discovery = JsonDocument.Parse(await http.GetStringAsync("/.well-known/openid-configuration"));

        Assert.That(keys.JwksJson, Is.EqualTo(jwks));
        Assert.That(keys.Keys, Has.Count.EqualTo(1));
        Assert.That(jwks, Does.Not.Contain("\"d\""), "no private key material is published");
        Assert.That(discovery.RootElement.GetProperty("jwks_uri").GetString(), Is.EqualTo($"http://127.0.0.1:{_broker.HttpPort}/.well-known/jwks.json"));
    }

    private static JsonElement Payload(string jwt) =>
        JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement.Clone();
}
