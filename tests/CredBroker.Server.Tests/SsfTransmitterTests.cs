using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Server.Tests;

/// <summary>
/// The Shared Signals transmitter, black box over HTTP against a production broker on Redis:
/// metadata, receiver authentication, stream configuration, RFC 8936 poll and ack semantics, RFC 8935
/// push with retry, and the stream cursor surviving a move to another broker process.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SsfTransmitterTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    private readonly string _dir = Directory.CreateTempSubdirectory("credbroker-ssf-").FullName;
    private readonly string _secretA = "receiver-a-" + Guid.NewGuid().ToString("N");
    private readonly string _secretB = "receiver-b-" + Guid.NewGuid().ToString("N");
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    protected override string[] BrokerArguments
    {
        get
        {
            File.WriteAllText(Path.Combine(_dir, "a.secret"), _secretA);
            File.WriteAllText(Path.Combine(_dir, "b.secret"), _secretB);
            return SsfArguments(_dir);
        }
    }

    public static string[] SsfArguments(string dir) =>
    [
        "--CredBroker:Ssf:Receivers:0:Id=tickets-api",
        $"--CredBroker:Ssf:Receivers:0:SecretFile={Path.Combine(dir, "a.secret")}",
        "--CredBroker:Ssf:Receivers:0:Audience=https://tickets.example",
        "--CredBroker:Ssf:Receivers:1:Id=kb-api",
        $"--CredBroker:Ssf:Receivers:1:SecretFile={Path.Combine(dir, "b.secret")}",
        "--CredBroker:Ssf:AllowHttpPushEndpoints=true",
        "--CredBroker:Ssf:PushRetryInitial=00:00:00.050",
        "--CredBroker:Ssf:PushRetryMax=00:00:00.200",
        "--CredBroker:Ssf:StreamRefreshInterval=00:00:00.200",
        "--CredBroker:Ssf:MaxLongPoll=00:00:03",
    ];

    /// <summary>Each test starts without streams (a receiver may hold only a few).</summary>
    [TearDown]
    public async Task DeleteStreamsAsync()
    {
        foreach (var secret in new[] { _secretA, _secretB })
        {
            foreach (var stream in (await GetJsonAsync("/ssf/streams", secret)).AsArray())
            {
                using var deleted = await SendAsync(HttpMethod.Delete, $"/ssf/streams?stream_id={stream!["stream_id"]}", null, secret);
                Assert.That(deleted.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
            }
        }
    }

    [OneTimeTearDown]
    public void Cleanup()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public async Task Metadata_NamesTheIssuerJwksConfigurationEndpointAndBothDeliveryMethods_WithoutCredentials()
    {
        var meta = await GetJsonAsync("/.well-known/ssf-configuration", secret: null);

        var issuer = Broker.HttpAddress.ToString().TrimEnd('/');
        Assert.That((string?)meta["spec_version"], Is.EqualTo("1_0"));
        Assert.That((string?)meta["issuer"], Is.EqualTo(issuer));
        Assert.That((string?)meta["jwks_uri"], Is.EqualTo(issuer + "/.well-known/jwks.json"));
        Assert.That((string?)meta["configuration_endpoint"], Is.EqualTo(issuer + "/ssf/streams"));
        Assert.That(meta["delivery_methods_supported"]!.AsArray().Select(n => (string?)n), Is.EquivalentTo(new[] { "urn:ietf:rfc:8935", "urn:ietf:rfc:8936" }));
    }

    [Test]
    public async Task StreamEndpoints_RefuseMissingOrWrongCredentials_AndHideOtherReceiversStreams()
    {
        var stream = await CreatePollStreamAsync(_secretA);
        var id = (string)stream["stream_id"]!;

        using var none = await SendAsync(HttpMethod.Get, "/ssf/streams", null, secret: null);
        using var wrong = await SendAsync(HttpMethod.Get, "/ssf/streams", null, secret: "not-" + _secretA);
        using var agentCredential = await SendAsync(HttpMethod.Get, "/ssf/streams", null, secret: Broker.WorkloadToken(Triage));
        using var other = await SendAsync(HttpMethod.Get, $"/ssf/streams?stream_id={id}", null, _secretB);
        using var otherPoll = await SendAsync(HttpMethod.Post, $"/ssf/poll/{id}", new JsonObject { ["returnImmediately"] = true }, _secretB);
        using var otherDelete = await SendAsync(HttpMethod.Delete, $"/ssf/streams?stream_id={id}", null, _secretB);
        using var own = await SendAsync(HttpMethod.Get, $"/ssf/streams?stream_id={id}", null, _secretA);

        Assert.That(none.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(none.Headers.WwwAuthenticate.ToString(), Does.StartWith("Bearer"));
        Assert.That(await none.Content.ReadAsStringAsync(), Does.Contain("CredBroker:Ssf:Receivers"));
        Assert.That(wrong.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(agentCredential.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(other.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(otherPoll.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(otherDelete.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(own.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((string?)stream["aud"], Is.EqualTo("https://tickets.example"));
        Assert.That((string?)stream["delivery"]!["endpoint_url"], Is.EqualTo($"{Broker.HttpAddress.ToString().TrimEnd('/')}/ssf/poll/{id}"));
        Assert.That(stream["events_delivered"]!.AsArray().Select(n => (string?)n), Is.EqualTo(new[] { SessionRevoked }));
    }

    [Test]
    public async Task AReceiverHoldsAtMostMaxStreamsPerReceiver_AndPatchChangesOnlyWhatIsGiven()
    {
        var first = (string)(await CreatePollStreamAsync(_secretA))["stream_id"]!;
        for (var i = 1; i < 5; i++)
        {
            await CreatePollStreamAsync(_secretA);
        }

        using var sixth = await SendAsync(HttpMethod.Post, "/ssf/streams", new JsonObject { ["delivery"] = new JsonObject { ["method"] = "urn:ietf:rfc:8936" } }, _secretA);
        using var patched = await SendAsync(HttpMethod.Patch, "/ssf/streams", new JsonObject { ["stream_id"] = first, ["description"] = "renamed" }, _secretA);
        var config = JsonNode.Parse(await patched.Content.ReadAsStringAsync())!;

        Assert.That(sixth.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(await sixth.Content.ReadAsStringAsync(), Does.Contain("limit is 5"));
        Assert.That(patched.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((string?)config["description"], Is.EqualTo("renamed"));
        Assert.That((string?)config["delivery"]!["method"], Is.EqualTo("urn:ietf:rfc:8936"));
        Assert.That(config["events_requested"]!.AsArray().Select(n => (string?)n), Is.EqualTo(new[] { SessionRevoked }));
    }

    [TestCase("{\"delivery\":{\"method\":\"urn:example:carrier-pigeon\"}}", "delivery.method")]
    [TestCase("{\"delivery\":{\"method\":\"urn:ietf:rfc:8935\"}}", "endpoint_url")]
    [TestCase("{\"delivery\":{\"method\":\"urn:ietf:rfc:8935\",\"endpoint_url\":\"ftp://127.0.0.1/x\"}}", "endpoint_url")]
    [TestCase("{\"delivery\":{\"method\":\"urn:ietf:rfc:8935\",\"endpoint_url\":\"https://user:pw@example.com/x\"}}", "endpoint_url")]
    [TestCase("{\"delivery\":{\"method\":\"urn:ietf:rfc:8936\"},\"aud\":\"someone-else\"}", "aud is set by the transmitter")]
    [TestCase("{\"events_requested\":\"not-an-array\"}", "events_requested")]
    [TestCase("[1,2]", "JSON object")]
    [TestCase("{not json", "not valid JSON")]
    public async Task CreateStream_WithBadConfiguration_Is400_AndSaysWhat(string body, string expected)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Broker.HttpAddress, "/ssf/streams")) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _secretA);
        using var response = await _http.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.That((string?)error["err"], Is.EqualTo("invalid_request"));
        Assert.That((string?)error["description"], Does.Contain(expected));
    }

    [Test]
    public async Task Poll_DeliversASignedSessionRevokedSet_RedeliversUntilAcked_ThenNotAgain()
    {
        var stream = await CreatePollStreamAsync(_secretA);
        var id = (string)stream["stream_id"]!;
        await DrainAsync(id, _secretA);
        using var client = Broker.ClientFor(Triage);
        var task = "ssf-" + Guid.NewGuid().ToString("N");
        var open = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = task, Scopes = { "tickets:read" }, Audience = "tickets-api" });
        await client.CompleteTaskAsync(open.LeaseId);

        var first = await PollUntilAsync(id, _secretA, sets => sets.Count > 0);
        var (jti, set) = first.Single();
        var again = await PollAsync(id, _secretA, new JsonObject { ["returnImmediately"] = true });
        var afterAck = await PollAsync(id, _secretA, new JsonObject { ["ack"] = new JsonArray(jti), ["returnImmediately"] = true });
        var later = await PollAsync(id, _secretA, new JsonObject { ["returnImmediately"] = true });

        var token = await ValidateSetAsync(set, "https://tickets.example");
        Assert.That(token.GetHeaderValue<string>("typ"), Is.EqualTo("secevent+jwt"));
        Assert.That(token.Id, Is.EqualTo(jti));
        var subject = JsonNode.Parse(token.GetPayloadValue<object>("sub_id").ToString()!)!;
        Assert.That((string?)subject["format"], Is.EqualTo("complex"));
        Assert.That((string?)subject["session"]!["id"], Is.EqualTo(open.LeaseId));
        Assert.That((string?)subject["user"]!["id"], Is.EqualTo("triage-agent"));
        var events = JsonNode.Parse(token.GetPayloadValue<object>("events").ToString()!)!;
        var revoked = events[SessionRevoked]!;
        Assert.That((string?)revoked["lease_id"], Is.EqualTo(open.LeaseId));
        Assert.That((string?)revoked["agent_id"], Is.EqualTo("triage-agent"));
        Assert.That((string?)revoked["task_id"], Is.EqualTo(task));
        Assert.That((string?)revoked["cause"], Is.EqualTo("completed"));
        Assert.That((string?)revoked["revocation"], Is.EqualTo("lease"));
        Assert.That((long)revoked["tokens_invalid_from"]!, Is.EqualTo((long)revoked["event_timestamp"]!));
        Assert.That(again["sets"]!.AsObject().Select(p => p.Key), Is.EqualTo(new[] { jti }), "an unacknowledged SET is delivered again, with the same jti");
        Assert.That(afterAck["sets"]!.AsObject(), Is.Empty);
        Assert.That(later["sets"]!.AsObject(), Is.Empty);
        Assert.That((bool)later["moreAvailable"]!, Is.False);
    }

    [Test]
    public async Task Poll_WithMaxEvents_PagesAndSaysMoreAvailable_AndSetErrsAcknowledge()
    {
        var stream = await CreatePollStreamAsync(_secretA);
        var id = (string)stream["stream_id"]!;
        await DrainAsync(id, _secretA);
        using var client = Broker.ClientFor(Triage);
        for (var i = 0; i < 3; i++)
        {
            var open = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = $"page-{i}-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Audience = "tickets-api" });
            await client.CompleteTaskAsync(open.LeaseId);
        }

        await PollUntilAsync(id, _secretA, sets => sets.Count >= 3, maxEvents: 10);
        var one = await PollAsync(id, _secretA, new JsonObject { ["maxEvents"] = 1, ["returnImmediately"] = true });
        var firstJti = one["sets"]!.AsObject().Single().Key;
        var rest = await PollAsync(id, _secretA, new JsonObject
        {
            ["setErrs"] = new JsonObject { [firstJti] = new JsonObject { ["err"] = "invalid_request", ["description"] = "test" } },
            ["maxEvents"] = 10,
            ["returnImmediately"] = true,
        });
        var badMax = await SendAsync(HttpMethod.Post, $"/ssf/poll/{id}", new JsonObject { ["maxEvents"] = -1 }, _secretA);

        Assert.That((bool)one["moreAvailable"]!, Is.True);
        Assert.That(rest["sets"]!.AsObject().Select(p => p.Key), Does.Not.Contain(firstJti), "a SET reported in setErrs counts as acknowledged");
        Assert.That(rest["sets"]!.AsObject().Count, Is.EqualTo(2));
        Assert.That(badMax.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
    }

    [Test]
    public async Task LongPoll_ReturnsWhenARevocationHappens()
    {
        var id = (string)(await CreatePollStreamAsync(_secretA))["stream_id"]!;
        await DrainAsync(id, _secretA);
        using var client = Broker.ClientFor(Triage);
        var open = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "long-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Audience = "tickets-api" });

        var waiting = PollUntilAsync(id, _secretA, sets => sets.Count > 0, returnImmediately: false);
        using var operators = Broker.OperatorClient();
        await operators.RevokeLeaseAsync(open.LeaseId, "suspicious");
        var sets = await waiting;

        var token = await ValidateSetAsync(sets.Single().Value, "https://tickets.example");
        var revoked = JsonNode.Parse(token.GetPayloadValue<object>("events").ToString()!)![SessionRevoked]!;
        Assert.That((string?)revoked["cause"], Is.EqualTo("revoked"));
        Assert.That((string?)revoked["initiating_entity"], Is.EqualTo("admin"));
        Assert.That((string?)revoked["reason_admin"]!["en"], Is.EqualTo("suspicious"));
    }

    [Test]
    public async Task Quarantine_IsOneAgentSet_WithIssuedBefore()
    {
        var id = (string)(await CreatePollStreamAsync(_secretA))["stream_id"]!;
        await DrainAsync(id, _secretA);
        using var operators = Broker.OperatorClient();
        try
        {
            await operators.QuarantineAgentAsync("billing-agent", "exfiltration alert");
            var sets = await PollUntilAsync(id, _secretA, s => s.Values.Any(set => Event(set)["revocation"]!.GetValue<string>() == "agent"));

            var token = await ValidateSetAsync(sets.Values.Single(set => Event(set)["revocation"]!.GetValue<string>() == "agent"), "https://tickets.example");
            var revoked = Event(token.EncodedToken);
            var subject = JsonNode.Parse(token.GetPayloadValue<object>("sub_id").ToString()!)!;
            Assert.That((string?)revoked["agent_id"], Is.EqualTo("billing-agent"));
            Assert.That((string?)revoked["cause"], Is.EqualTo("quarantined"));
            Assert.That(revoked["lease_id"], Is.Null);
            Assert.That((long)revoked["issued_before"]!, Is.GreaterThanOrEqualTo((long)revoked["tokens_invalid_from"]!));
            Assert.That(subject["session"], Is.Null);
            Assert.That((string?)subject["user"]!["id"], Is.EqualTo("billing-agent"));
        }
        finally
        {
            await operators.ReleaseAgentAsync("billing-agent");
        }

        static JsonNode Event(string set) => JsonNode.Parse(new JsonWebToken(set).GetPayloadValue<object>("events").ToString()!)![SessionRevoked]!;
    }

    [Test]
    public async Task Push_RetriesWithBackoffUntilTheReceiverAccepts_AndMovesOnAfterA400()
    {
        var received = new List<(string Lease, string Jti, int Status)>();
        var scripted = new List<string>();
        string? marker = null;
        var armed = false;
        var authorization = "Bearer push-" + Guid.NewGuid().ToString("N");
        await using var receiver = await StartReceiverAsync(async http =>
        {
            var body = await new StreamReader(http.Request.Body).ReadToEndAsync();
            var set = new JsonWebToken(body);
            var lease = (string?)JsonNode.Parse(set.GetPayloadValue<object>("events").ToString()!)![SessionRevoked]!["lease_id"] ?? string.Empty;
            int status;
            lock (received)
            {
                if (http.Request.Headers.Authorization != authorization || http.Request.ContentType != "application/secevent+jwt")
                {
                    status = 401;
                }
                else if (!armed || !scripted.Contains(lease))
                {
                    // Older events (other tests') and the marker: accepted at once.
                    armed |= lease == marker;
                    status = 202;
                }
                else
                {
                    // The first scripted lease is refused twice (503) then accepted, the second rejected for good (400), the third like the first.
                    var tries = received.Count(r => r.Lease == lease);
                    status = scripted.IndexOf(lease) == 1 ? 400 : tries < 2 ? 503 : 202;
                }

                received.Add((lease, set.Id, status));
            }

            http.Response.StatusCode = status;
            if (status == 400)
            {
                await http.Response.WriteAsJsonAsync(new { err = "invalid_request", description = "test rejection" });
            }
        });
        using var client = Broker.ClientFor(Triage);
        var mark = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "mark-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Audience = "tickets-api" });
        lock (received)
        {
            marker = mark.LeaseId;
        }

        var create = new JsonObject
        {
            ["delivery"] = new JsonObject { ["method"] = "urn:ietf:rfc:8935", ["endpoint_url"] = receiver.Url, ["authorization_header"] = authorization },
            ["events_requested"] = new JsonArray(SessionRevoked),
        };
        using var created = await SendAsync(HttpMethod.Post, "/ssf/streams", create, _secretB);
        var stream = JsonNode.Parse(await created.Content.ReadAsStringAsync())!;
        Assert.That(created.StatusCode, Is.EqualTo(HttpStatusCode.Created), stream.ToJsonString());
        Assert.That(stream["delivery"]!["authorization_header"], Is.Null, "the push authorization is write-only");
        await client.CompleteTaskAsync(mark.LeaseId);
        await WaitUntilAsync(() => { lock (received) { return armed; } });

        for (var i = 0; i < 3; i++)
        {
            var open = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = $"push{i}-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Audience = "tickets-api" });
            lock (received)
            {
                scripted.Add(open.LeaseId);
            }

            await client.CompleteTaskAsync(open.LeaseId);
        }

        await WaitUntilAsync(() => { lock (received) { return received.Count(r => r.Lease == scripted[2] && r.Status == 202) == 1; } });
        await SendAsync(HttpMethod.Delete, $"/ssf/streams?stream_id={stream["stream_id"]}", null, _secretB);
        lock (received)
        {
            var attempts = scripted.Select(lease => received.Where(r => r.Lease == lease).ToList()).ToList();
            var log = string.Join(", ", received.Where(r => scripted.Contains(r.Lease)));
            Assert.That(attempts[0].Select(r => r.Status), Is.EqualTo(new[] { 503, 503, 202 }), "retried until accepted: " + log);
            Assert.That(attempts[0].Select(r => r.Jti).Distinct().Count(), Is.EqualTo(1), "a retry sends the same SET (jti)");
            Assert.That(attempts[1].Select(r => r.Status), Is.EqualTo(new[] { 400 }), "a 400 is final, not retried: " + log);
            Assert.That(attempts[2].Select(r => r.Status), Is.EqualTo(new[] { 503, 503, 202 }), log);
            Assert.That(received.All(r => r.Status != 401), Is.True, "every push carries the stream's authorization header and the SET media type");
        }
    }

    [Test]
    public async Task StreamCursor_IsInRedis_SoAnotherBrokerProcessContinuesWhereTheFirstStopped()
    {
        var id = (string)(await CreatePollStreamAsync(_secretA))["stream_id"]!;
        await DrainAsync(id, _secretA);
        using var client = Broker.ClientFor(Triage);
        var acked = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "restart1-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Audience = "tickets-api" });
        await client.CompleteTaskAsync(acked.LeaseId);
        var sets = await PollUntilAsync(id, _secretA, s => s.Count > 0);
        await PollAsync(id, _secretA, new JsonObject { ["ack"] = new JsonArray([.. sets.Keys.Select(k => (JsonNode)k)]), ["returnImmediately"] = true });
        var missed = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "restart2-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Audience = "tickets-api" });
        await client.CompleteTaskAsync(missed.LeaseId);

        using var replica = await Broker.StartReplicaProcessAsync(RedisUnderTest.ConnectionString, BrokerArguments);
        var fromReplica = await PollUntilAsync(id, _secretA, s => s.Count > 0, baseAddress: new Uri($"http://127.0.0.1:{replica.HttpPort}"));

        var leases = fromReplica.Values.Select(set => (string?)JsonNode.Parse(new JsonWebToken(set).GetPayloadValue<object>("events").ToString()!)![SessionRevoked]!["lease_id"]).ToList();
        Assert.That(leases, Is.EqualTo(new[] { missed.LeaseId }), "only the unacknowledged event, from the cursor stored in Redis");
    }

    [Test]
    public async Task Status_PausedHoldsEvents_DisabledSkipsThem()
    {
        var id = (string)(await CreatePollStreamAsync(_secretA))["stream_id"]!;
        await DrainAsync(id, _secretA);
        using var paused = await SendAsync(HttpMethod.Post, "/ssf/status", new JsonObject { ["stream_id"] = id, ["status"] = "paused" }, _secretA);
        using var client = Broker.ClientFor(Triage);
        var held = await client.BeginTaskAsync(new BeginTaskRequest { TaskId = "held-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, Audience = "tickets-api" });
        await client.CompleteTaskAsync(held.LeaseId);
        var whilePaused = await PollAsync(id, _secretA, new JsonObject { ["returnImmediately"] = true });
        await SendAsync(HttpMethod.Post, "/ssf/status", new JsonObject { ["stream_id"] = id, ["status"] = "enabled" }, _secretA);
        var resumed = await PollUntilAsync(id, _secretA, s => s.Count > 0);
        var status = await GetJsonAsync($"/ssf/status?stream_id={id}", _secretA);
        using var bad = await SendAsync(HttpMethod.Post, "/ssf/status", new JsonObject { ["stream_id"] = id, ["status"] = "sleeping" }, _secretA);

        Assert.That(paused.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(whilePaused["sets"]!.AsObject(), Is.Empty);
        Assert.That(resumed.Count, Is.EqualTo(1));
        Assert.That((string?)status["status"], Is.EqualTo("enabled"));
        Assert.That(bad.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
    }

    // --- helpers ---
    private async Task<JsonWebToken> ValidateSetAsync(string set, string audience)
    {
        var jwks = new JsonWebKeySet(await _http.GetStringAsync(new Uri(Broker.HttpAddress, "/.well-known/jwks.json")));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(set, new TokenValidationParameters
        {
            ValidIssuer = Broker.HttpAddress.ToString().TrimEnd('/'),
            ValidAudience = audience,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidAlgorithms = ["ES256"],
            ValidTypes = ["secevent+jwt"],
            RequireExpirationTime = false,
        });
        Assert.That(result.IsValid, Is.True, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }

    private async Task<JsonNode> CreatePollStreamAsync(string secret)
    {
        using var response = await SendAsync(HttpMethod.Post, "/ssf/streams",
            new JsonObject { ["delivery"] = new JsonObject { ["method"] = "urn:ietf:rfc:8936" }, ["events_requested"] = new JsonArray(SessionRevoked) }, secret);
        var body = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created), body);
        return JsonNode.Parse(body)!;
    }

    /// <summary>Acknowledges everything already in the log (events of other tests), so a test sees only its own.</summary>
    private async Task DrainAsync(string id, string secret)
    {
        var acks = new JsonArray();
        while (true)
        {
            var page = await PollAsync(id, secret, new JsonObject { ["ack"] = acks, ["maxEvents"] = 500, ["returnImmediately"] = true });
            var sets = page["sets"]!.AsObject();
            if (sets.Count == 0)
            {
                return;
            }

            acks = new JsonArray([.. sets.Select(s => (JsonNode)s.Key)]);
        }
    }

    private async Task<Dictionary<string, string>> PollUntilAsync(string id, string secret, Func<Dictionary<string, string>, bool> done,
        int maxEvents = 100, bool returnImmediately = true, Uri? baseAddress = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var page = await PollAsync(id, secret, new JsonObject { ["maxEvents"] = maxEvents, ["returnImmediately"] = returnImmediately }, baseAddress);
            var sets = page["sets"]!.AsObject().ToDictionary(p => p.Key, p => (string)p.Value!);
            if (done(sets))
            {
                return sets;
            }

            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the expected SETs did not arrive in 30 s");
            await Task.Delay(50);
        }
    }

    private async Task<JsonNode> PollAsync(string id, string secret, JsonObject body, Uri? baseAddress = null)
    {
        using var response = await SendAsync(HttpMethod.Post, $"/ssf/poll/{id}", body, secret, baseAddress);
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        return JsonNode.Parse(text)!;
    }

    private async Task<JsonNode> GetJsonAsync(string path, string? secret)
    {
        using var response = await SendAsync(HttpMethod.Get, path, null, secret);
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        return JsonNode.Parse(text)!;
    }

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, JsonNode? body, string? secret, Uri? baseAddress = null)
    {
        var request = new HttpRequestMessage(method, new Uri(baseAddress ?? Broker.HttpAddress, path));
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        }

        if (secret is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        }

        return _http.SendAsync(request);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the condition did not hold in 30 s");
            await Task.Delay(20);
        }
    }

    private static async Task<Receiver> StartReceiverAsync(Func<HttpContext, Task> handle)
    {
        var port = RedisServer.FreePort();
        var app = WebApplication.CreateSlimBuilder().Build();
        app.Urls.Add($"http://127.0.0.1:{port}");
        app.MapPost("/events", handle);
        await app.StartAsync();
        return new Receiver(app, $"http://127.0.0.1:{port}/events");
    }

    private sealed record Receiver(WebApplication App, string Url) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }
}
