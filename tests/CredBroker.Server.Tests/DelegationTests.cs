using System.Text.Json;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Delegation end to end against real Redis: on behalf of a user (a user token from a trusted
/// issuer the test holds the key of) and down a chain of sub-agents (a parent's CredBroker token as
/// subject_token). Delegation only ever narrows; ending a parent ends its descendants.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DelegationTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Summarizer = "system:serviceaccount:support:summarizer";
    private const string Helper = "system:serviceaccount:support:helper";
    private const string Helper2 = "system:serviceaccount:support:helper2";
    private const string Alice = "alice@users.test";

    private static readonly string Agents = ProductionBroker.AgentsYaml + """

          - id: summarizer-agent
            owner: support-team@example.com
            purpose: summarise tickets for triage
            audiences: [tickets-api, kb-api, wiki-api]
            allowed_scopes: [tickets:read, tickets:comment, kb:read, wiki:read]
            max_token_ttl: 5m
            max_lease_lifetime: 30m
          - id: helper-agent
            owner: support-team@example.com
            purpose: fetch ticket details
            audiences: [tickets-api]
            allowed_scopes: [tickets:read]
          - id: helper2-agent
            owner: support-team@example.com
            purpose: fetch ticket attachments
            audiences: [tickets-api]
            allowed_scopes: [tickets:read]
        """;

    private RedisServer _redis = null!;
    private ProductionBroker _broker = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _redis = RedisServer.Start();
        _broker = new ProductionBroker(Agents);
        await _broker.StartAsync(_redis.ConnectionString,
            $"--CredBroker:Identity:Issuers:0:Workloads:3:Subject={Summarizer}",
            "--CredBroker:Identity:Issuers:0:Workloads:3:Agent=summarizer-agent",
            $"--CredBroker:Identity:Issuers:0:Workloads:4:Subject={Helper}",
            "--CredBroker:Identity:Issuers:0:Workloads:4:Agent=helper-agent",
            $"--CredBroker:Identity:Issuers:0:Workloads:5:Subject={Helper2}",
            "--CredBroker:Identity:Issuers:0:Workloads:5:Agent=helper2-agent",
            "--CredBroker:Delegation:MaxDepth=2");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _broker.DisposeAsync();
        _redis.Dispose();
    }

    /// <summary>A delegation token of <paramref name="lease"/>: its audience is this broker (API tokens are never parent tokens).</summary>
    private async Task<string> DelegationToken(CredBroker.Client.CredBrokerClient client, BeginTaskResponse lease) =>
        (await client.IssueTokenAsync(new IssueTokenRequest { LeaseId = lease.LeaseId, Audience = _broker.HttpAddress.ToString().TrimEnd('/') })).AccessToken;

    private static BeginTaskRequest Request(string subjectToken = "", string audience = "", TimeSpan? ttl = null, params string[] scopes)
    {
        var request = new BeginTaskRequest { TaskId = "task-" + Guid.NewGuid().ToString("N"), SubjectToken = subjectToken, Audience = audience, Scopes = { scopes } };
        if (ttl is { } t)
        {
            request.Ttl = Duration.FromTimeSpan(t);
        }

        return request;
    }

    private static JsonElement Payload(string jwt) =>
        JsonDocument.Parse(Convert.FromBase64String(Pad(jwt.Split('.')[1].Replace('-', '+').Replace('_', '/')))).RootElement;

    private static string Pad(string s) => s + new string('=', (4 - (s.Length % 4)) % 4);

    /// <summary>The act chain, outermost first: act.sub, act.act.sub, ...</summary>
    private static List<string> ActChain(JsonElement payload)
    {
        var chain = new List<string>();
        var current = payload;
        while (current.TryGetProperty("act", out var act))
        {
            chain.Add(act.GetProperty("sub").GetString()!);
            current = act;
        }

        return chain;
    }

    private static RpcException Denied(Func<Task> call, string rule)
    {
        var error = Assert.ThrowsAsync<RpcException>(async () => await call())!;
        Assert.That(error.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), error.Detail);
        Assert.That(error.GetDetail<ErrorInfo>()?.Metadata["rules"], Does.Contain(rule), error.Detail);
        return error;
    }

    [Test]
    public async Task OnBehalfOfAUser_TokenIsTheUsersWithTheAgentAsActor_AndIssueAndRenewKeepIt()
    {
        using var triage = _broker.ClientFor(Triage);
        var user = _broker.UserToken(Alice, ["tickets:read", "kb:read", "tickets:export"]);

        var begun = await triage.BeginTaskAsync(Request(user, scopes: ["tickets:read"]));
        var issued = await triage.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId });
        var renewed = await triage.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId });

        foreach (var token in new[] { begun.AccessToken, issued.AccessToken, renewed.AccessToken })
        {
            var claims = Payload(token);
            Assert.That(claims.GetProperty("sub").GetString(), Is.EqualTo(Alice));
            Assert.That(ActChain(claims), Is.EqualTo(new[] { "triage-agent" }));
            Assert.That(claims.GetProperty("client_id").GetString(), Is.EqualTo("triage-agent"));
            Assert.That(claims.GetProperty("scope").GetString(), Is.EqualTo("tickets:read"));
            Assert.That(claims.TryGetProperty("parent_lease_ids", out _), Is.False, "a user delegation has no parent lease");
        }

        var introspected = await triage.IntrospectAsync(begun.AccessToken);
        Assert.That((introspected.Active, introspected.Sub, introspected.ActSub), Is.EqualTo((true, Alice, "triage-agent")));
    }

    [Test]
    public async Task OnBehalfOfAUser_ScopesAreTheIntersectionOfDelegatedAndAllowed()
    {
        using var triage = _broker.ClientFor(Triage);
        var user = _broker.UserToken(Alice, ["tickets:read", "tickets:delete"]);

        // Delegated by the user but not the agent's to hold: policy refuses it.
        Denied(() => triage.BeginTaskAsync(Request(user, scopes: ["tickets:read", "tickets:delete"])), "agent.disallowed_scope");
        // The agent's to hold but not delegated by the user: refused, naming the scope.
        var error = Denied(() => triage.BeginTaskAsync(Request(user, scopes: ["tickets:read", "kb:read"])), "delegation.user_scope");
        Assert.That(error.Detail, Does.Contain("'kb:read'").And.Contain(Alice));

        var granted = await triage.BeginTaskAsync(Request(user, scopes: ["tickets:read"]));
        Assert.That(granted.GrantedScopes, Is.EqualTo(new[] { "tickets:read" }));
    }

    [Test]
    public async Task OnBehalfOfAUser_ScpArrayClaim_IsTheDelegatedScopes()
    {
        using var triage = _broker.ClientFor(Triage);
        var user = _broker.UserToken(Alice, ["kb:read", "tickets:comment"], issuer: ProductionBroker.ScpUserIssuer);

        var begun = await triage.BeginTaskAsync(Request(user, "kb-api", scopes: ["kb:read"]));

        Assert.That(Payload(begun.AccessToken).GetProperty("scope").GetString(), Is.EqualTo("kb:read"));
        Denied(() => triage.BeginTaskAsync(Request(user, scopes: ["tickets:read"])), "delegation.user_scope");
    }

    [TestCase("expired", "expired or not yet valid")]
    [TestCase("audience", "not meant for this broker")]
    [TestCase("issuer", "not a trusted user-token issuer")]
    [TestCase("signature", "signature does not verify")]
    [TestCase("garbage", "not a JWT")]
    [TestCase("no-scope", "delegated no scope")]
    public void OnBehalfOfAUser_InvalidUserToken_IsPermissionDeniedSayingWhy(string fault, string message)
    {
        using var triage = _broker.ClientFor(Triage);
        using var otherKey = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var token = fault switch
        {
            "expired" => _broker.UserToken(Alice, ["tickets:read"], lifetime: TimeSpan.FromMinutes(-5)),
            "audience" => _broker.UserToken(Alice, ["tickets:read"], audience: "some-other-api"),
            "issuer" => _broker.UserToken(Alice, ["tickets:read"], issuer: "https://evil.test"),
            "signature" => _broker.UserToken(Alice, ["tickets:read"], key: otherKey),
            "garbage" => "not-a-token",
            _ => _broker.UserToken(Alice, []),
        };

        var error = Assert.ThrowsAsync<RpcException>(() => triage.BeginTaskAsync(Request(token, scopes: ["tickets:read"])))!;

        Assert.That(error.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), "the caller is authenticated; the token it presents for a user is what is refused");
        Assert.That(error.Detail, Does.Contain(message));
    }

    [Test]
    public async Task SubAgent_TokenNestsTheActChainAndNeverOutlivesTheParent()
    {
        using var triage = _broker.ClientFor(Triage);
        using var summarizer = _broker.ClientFor(Summarizer);
        var parent = await triage.BeginTaskAsync(Request(ttl: TimeSpan.FromMinutes(3), scopes: ["tickets:read", "tickets:comment"]));

        var child = await summarizer.BeginTaskAsync(Request(await DelegationToken(triage, parent), scopes: ["tickets:read"]));

        var claims = Payload(child.AccessToken);
        Assert.That(claims.GetProperty("sub").GetString(), Is.EqualTo("triage-agent"), "the principal stays the parent's");
        Assert.That(ActChain(claims), Is.EqualTo(new[] { "summarizer-agent", "triage-agent" }));
        Assert.That(claims.GetProperty("parent_lease_ids").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { parent.LeaseId }));
        Assert.That(claims.GetProperty("aud").GetString(), Is.EqualTo("tickets-api"), "the parent's audience by default");
        Assert.That(child.TokenExpiresAt.ToDateTimeOffset(), Is.LessThanOrEqualTo(parent.TokenExpiresAt.ToDateTimeOffset()));
        Assert.That(child.LeaseDeadline.ToDateTimeOffset(), Is.LessThanOrEqualTo(parent.TokenExpiresAt.ToDateTimeOffset()), "the child lease ends by the parent token's exp");

        // Renewing cannot push the child past the parent token either.
        var renewed = await summarizer.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = child.LeaseId, ExtendBy = Duration.FromTimeSpan(TimeSpan.FromMinutes(20)) });
        Assert.That(renewed.LeaseDeadline.ToDateTimeOffset(), Is.LessThanOrEqualTo(parent.TokenExpiresAt.ToDateTimeOffset()));
        Assert.That(ActChain(Payload(renewed.AccessToken)), Is.EqualTo(new[] { "summarizer-agent", "triage-agent" }));

        var introspected = await triage.IntrospectAsync(child.AccessToken);
        Assert.That(introspected.Active, Is.True);
        Assert.That(introspected.ActChain, Is.EqualTo(new[] { "triage-agent" }));
        Assert.That(introspected.ParentLeaseIds, Is.EqualTo(new[] { parent.LeaseId }));
    }

    [Test]
    public async Task SubAgent_OnBehalfOfAUser_KeepsTheUserAsSubject()
    {
        using var triage = _broker.ClientFor(Triage);
        using var summarizer = _broker.ClientFor(Summarizer);
        var parent = await triage.BeginTaskAsync(Request(_broker.UserToken(Alice, ["tickets:read"]), scopes: ["tickets:read"]));

        var child = await summarizer.BeginTaskAsync(Request(await DelegationToken(triage, parent), scopes: ["tickets:read"]));

        var claims = Payload(child.AccessToken);
        Assert.That(claims.GetProperty("sub").GetString(), Is.EqualTo(Alice));
        Assert.That(ActChain(claims), Is.EqualTo(new[] { "summarizer-agent", "triage-agent" }));
    }

    [Test]
    public async Task SubAgent_AskingForMoreThanTheParentHas_IsPermissionDenied()
    {
        using var triage = _broker.ClientFor(Triage);
        using var summarizer = _broker.ClientFor(Summarizer);
        var parent = await triage.BeginTaskAsync(Request(ttl: TimeSpan.FromMinutes(3), scopes: ["tickets:read"]));
        var parentToken = await DelegationToken(triage, parent);

        var wider = Denied(() => summarizer.BeginTaskAsync(Request(parentToken, scopes: ["tickets:read", "kb:read"])), "delegation.parent_scope");
        Assert.That(wider.Detail, Does.Contain("'kb:read'"));
        Denied(() => summarizer.BeginTaskAsync(Request(parentToken, ttl: TimeSpan.FromMinutes(20), scopes: ["tickets:read"])), "delegation.parent_ttl");
        Denied(() => summarizer.BeginTaskAsync(Request(parentToken, "wiki-api", scopes: ["tickets:read"])), "delegation.parent_audience");
        Denied(() => triage.BeginTaskAsync(Request(parentToken, scopes: ["tickets:read"])), "delegation.parent_self");

        // Another audience the parent agent may use (kb-api) is allowed, within the parent's scopes.
        var child = await summarizer.BeginTaskAsync(Request(parentToken, "kb-api", scopes: ["tickets:read"]));
        Assert.That(Payload(child.AccessToken).GetProperty("aud").GetString(), Is.EqualTo("kb-api"));
        Denied(() => summarizer.IssueTokenAsync(new IssueTokenRequest { LeaseId = child.LeaseId, Audience = "wiki-api" }), "delegation.parent_audience");
    }

    [Test]
    public async Task SubAgent_ChainDeeperThanTheCap_IsPermissionDenied()
    {
        using var triage = _broker.ClientFor(Triage);
        using var summarizer = _broker.ClientFor(Summarizer);
        using var helper = _broker.ClientFor(Helper);
        using var helper2 = _broker.ClientFor(Helper2);
        var root = await triage.BeginTaskAsync(Request(scopes: ["tickets:read"]));
        var level1 = await summarizer.BeginTaskAsync(Request(await DelegationToken(triage, root), scopes: ["tickets:read"]));
        var level2 = await helper.BeginTaskAsync(Request(await DelegationToken(summarizer, level1), scopes: ["tickets:read"]));
        var level2Token = await DelegationToken(helper, level2);

        var error = Denied(() => helper2.BeginTaskAsync(Request(level2Token, scopes: ["tickets:read"])), "delegation.depth");

        Assert.That(error.Detail, Does.Contain("at most 2"));
        var claims = Payload(level2.AccessToken);
        Assert.That(ActChain(claims), Is.EqualTo(new[] { "helper-agent", "summarizer-agent", "triage-agent" }));
        Assert.That(claims.GetProperty("parent_lease_ids").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { level1.LeaseId, root.LeaseId }));
    }

    [Test]
    public async Task RevokingTheParent_RevokesEveryDescendant_AndTheirTokensGoInactive()
    {
        using var triage = _broker.ClientFor(Triage);
        using var summarizer = _broker.ClientFor(Summarizer);
        using var helper = _broker.ClientFor(Helper);
        using var operators = _broker.OperatorClient();
        var root = await triage.BeginTaskAsync(Request(scopes: ["tickets:read"]));
        var child = await summarizer.BeginTaskAsync(Request(await DelegationToken(triage, root), scopes: ["tickets:read"]));
        var childToken = await DelegationToken(summarizer, child);
        var grandchild = await helper.BeginTaskAsync(Request(childToken, scopes: ["tickets:read"]));
        await using var downstream = await OfflineValidator.StartAsync(_broker, "tickets-api");
        Assert.That(downstream.Validator.Validate(grandchild.AccessToken, DateTimeOffset.UtcNow).Error, Is.Null, "valid offline before the revoke");

        await operators.RevokeLeaseAsync(root.LeaseId, "compromised task");

        await downstream.WaitUntilRejectedAsync(child.AccessToken);
        await downstream.WaitUntilRejectedAsync(grandchild.AccessToken);

        Assert.That((await operators.GetLeaseAsync(child.LeaseId)).State, Is.EqualTo("revoked"));
        Assert.That((await operators.GetLeaseAsync(grandchild.LeaseId)).State, Is.EqualTo("revoked"));
        Assert.That((await triage.IntrospectAsync(grandchild.AccessToken)).Active, Is.False);
        var refused = Assert.ThrowsAsync<RpcException>(() => helper.IssueTokenAsync(new IssueTokenRequest { LeaseId = grandchild.LeaseId }))!;
        Assert.That(refused.StatusCode, Is.EqualTo(StatusCode.FailedPrecondition));
        Denied(() => helper.BeginTaskAsync(Request(childToken, scopes: ["tickets:read"])), "delegation.parent_lease");
    }

    [Test]
    public async Task CompletingTheParent_RevokesItsChildren_AndANewChildIsRefused()
    {
        using var triage = _broker.ClientFor(Triage);
        using var summarizer = _broker.ClientFor(Summarizer);
        using var operators = _broker.OperatorClient();
        var root = await triage.BeginTaskAsync(Request(scopes: ["tickets:read"]));
        var rootToken = await DelegationToken(triage, root);
        var child = await summarizer.BeginTaskAsync(Request(rootToken, scopes: ["tickets:read"]));

        await triage.CompleteTaskAsync(root.LeaseId);

        var ended = await operators.GetLeaseAsync(child.LeaseId);
        Assert.That(ended.State, Is.EqualTo("revoked"));
        Assert.That((await triage.IntrospectAsync(child.AccessToken)).Active, Is.False);
        // The parent's token is still unexpired and correctly signed, but its lease has ended.
        Denied(() => summarizer.BeginTaskAsync(Request(rootToken, scopes: ["tickets:read"])), "delegation.parent_lease");
    }

    [Test]
    public async Task QuarantiningTheParentAgent_RevokesTheLeasesDelegatedFromIt()
    {
        using var helperParent = _broker.ClientFor(Helper);
        using var helper2 = _broker.ClientFor(Helper2);
        using var operators = _broker.OperatorClient();
        var root = await helperParent.BeginTaskAsync(Request(scopes: ["tickets:read"]));
        var child = await helper2.BeginTaskAsync(Request(await DelegationToken(helperParent, root), scopes: ["tickets:read"]));

        try
        {
            await operators.QuarantineAgentAsync("helper-agent", "suspicious");

            Assert.That((await operators.GetLeaseAsync(child.LeaseId)).State, Is.EqualTo("revoked"));
            Assert.That((await helper2.IntrospectAsync(child.AccessToken)).Active, Is.False);
        }
        finally
        {
            await operators.ReleaseAgentAsync("helper-agent");

            // Offline validators revoke the agent's tokens with iat before the quarantine time, and iat
            // has whole seconds: a token minted later in the same second counts as revoked (fail closed).
            // Later tests of this fixture mint for helper-agent, so they start in the next second.
            var quarantineSecond = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            while (DateTimeOffset.UtcNow.ToUnixTimeSeconds() <= quarantineSecond)
            {
                await Task.Delay(20);
            }
        }
    }

    /// <summary>A downstream API's offline validator: JWKS over HTTP, deny list fed by the broker's revocation feed.</summary>
    private sealed class OfflineValidator : IAsyncDisposable
    {
        private readonly HttpClient _http;
        private readonly CredBroker.Client.CredBrokerClient _feedClient;
        private readonly CancellationTokenSource _stop;
        private readonly Task _following;

        private OfflineValidator(HttpClient http, CredBroker.Client.CredBrokerClient feedClient, Validation.AccessTokenValidator validator, CancellationTokenSource stop, Task following)
        {
            _http = http;
            _feedClient = feedClient;
            Validator = validator;
            _stop = stop;
            _following = following;
        }

        public Validation.AccessTokenValidator Validator { get; }

        public static async Task<OfflineValidator> StartAsync(ProductionBroker broker, string audience)
        {
            var http = new HttpClient { BaseAddress = broker.HttpAddress };
            var keys = new Validation.JwksCache(ct => http.GetStringAsync("/.well-known/jwks.json", ct));
            await keys.RefreshAsync();
            var feedClient = broker.ClientFor("system:serviceaccount:apis:tickets");
            var sync = new Validation.RevocationSync(new CredBroker.Client.BrokerRevocationFeed(feedClient), new Validation.DenyList(), TimeProvider.System);
            var validator = new Validation.AccessTokenValidator(
                new Validation.TokenValidationOptions { Issuer = broker.HttpAddress.ToString().TrimEnd('/'), Audience = audience }, keys, sync);
            var stop = new CancellationTokenSource();
            var following = sync.RunAsync(stop.Token);
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (!sync.IsAvailable || !sync.IsSynced)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the revocation feed did not catch up within 5 s");
                await Task.Delay(10);
            }

            return new OfflineValidator(http, feedClient, validator, stop, following);
        }

        /// <summary>Waits (bounded) until the revocation feed has made the validator reject <paramref name="token"/> as revoked.</summary>
        public async Task WaitUntilRejectedAsync(string token)
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (Validator.Validate(token, DateTimeOffset.UtcNow).Error != Validation.TokenErrors.Revoked)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the revocation did not reach the offline validator within 5 s");
                await Task.Delay(10);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _following;
            _feedClient.Dispose();
            _http.Dispose();
            _stop.Dispose();
        }
    }
}
