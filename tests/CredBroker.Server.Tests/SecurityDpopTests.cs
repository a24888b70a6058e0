using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Validation;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CredBroker.Server.Tests;

/// <summary>
/// DPoP (RFC 9449) at the broker, black-box against a production broker on Redis: the proof in the
/// <c>dpop</c> metadata binds tokens (<c>cnf.jkt</c>); a DPoP-bound lease answers only to its key;
/// policy <c>sender_constrained</c> per agent and per scope; every proof check refuses with its own
/// ErrorInfo reason; proofs made by Python (PyJWT + cryptography) are accepted or refused the same way.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityDpopTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Billing = "system:serviceaccount:finance:billing";

    protected override string AgentsYaml => """
        agents:
          - id: triage-agent
            owner: support-team@example.com
            purpose: triage support tickets
            audiences: [tickets-api]
            allowed_scopes: [tickets:read, tickets:comment]
            approval_scopes: [tickets:export]
            sender_constrained: [tickets:comment]
            max_token_ttl: 5m
            max_lease_lifetime: 30m
          - id: billing-agent
            owner: finance@example.com
            purpose: reconcile invoices
            audiences: [billing-api]
            allowed_scopes: [invoices:read]
            sender_constrained: true
        """;

    private string Htu(string method) => $"http://127.0.0.1:{Broker.AgentPort}/credbroker.v1.AgentBroker/{method}";

    private static BeginTaskRequest Begin(params string[] scopes) => new() { TaskId = "task-" + Guid.NewGuid().ToString("N"), Scopes = { scopes } };

    private static Metadata Dpop(string proof) => new() { { "dpop", proof } };

    private static JsonElement Claims(string token) =>
        JsonDocument.Parse(Convert.FromBase64String(Pad(token.Split('.')[1].Replace('-', '+').Replace('_', '/')))).RootElement;

    private static string Pad(string s) => s + new string('=', (4 - (s.Length % 4)) % 4);

    private static string? Jkt(string token) => Claims(token).TryGetProperty("cnf", out var cnf) && cnf.TryGetProperty("jkt", out var jkt) ? jkt.GetString() : null;

    [Test]
    public async Task ClientWithDpopKey_EveryTokenOfTheLeaseIsBoundToTheKey()
    {
        using var key = DpopKey.Generate();
        using var agent = new CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(Triage)) { DpopKey = key };

        var begun = await agent.BeginTaskAsync(Begin("tickets:read", "tickets:comment"));
        var issued = await agent.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId, Scopes = { "tickets:comment" } });
        var renewed = await agent.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId });

        Assert.That(new[] { begun.AccessToken, issued.AccessToken, renewed.AccessToken }.Select(Jkt), Is.All.EqualTo(key.Thumbprint));
        Assert.That(key.Thumbprint, Is.EqualTo(DpopKeyThumbprintOf(key)), "the thumbprint is RFC 7638's");
    }

    [Test]
    public async Task DpopBoundLease_RefusesCallsWithoutAProofOrWithAnotherKey()
    {
        using var key = DpopKey.Generate();
        using var other = DpopKey.Generate();
        using var bound = new CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(Triage)) { DpopKey = key };
        using var plain = Broker.ClientFor(Triage);
        using var thief = new CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(Triage)) { DpopKey = other };
        var request = Begin("tickets:read");
        var begun = await bound.BeginTaskAsync(request);

        var missing = await Refused.CallAsync(() => plain.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId }));
        var wrongKey = await Refused.CallAsync(() => thief.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId }));
        var renewWrongKey = await Refused.CallAsync(() => thief.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId }));
        var replayWrongKey = await Refused.CallAsync(() => thief.BeginTaskAsync(request));
        var renewMissing = await Refused.CallAsync(() => plain.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId }));

        Assert.Multiple(() =>
        {
            Assert.That((missing.StatusCode, missing.ErrorInfo?.Reason), Is.EqualTo((StatusCode.Unauthenticated, "DPOP_MISSING")), missing.Message);
            Assert.That((renewMissing.StatusCode, renewMissing.ErrorInfo?.Reason), Is.EqualTo((StatusCode.Unauthenticated, "DPOP_MISSING")), renewMissing.Message);
            foreach (var e in new[] { wrongKey, renewWrongKey, replayWrongKey })
            {
                Assert.That((e.StatusCode, e.ErrorInfo?.Reason), Is.EqualTo((StatusCode.Unauthenticated, "DPOP_BINDING")), e.Message);
            }
        });
        var again = await bound.BeginTaskAsync(request);
        Assert.That((again.LeaseId, Jkt(again.AccessToken)), Is.EqualTo((begun.LeaseId, key.Thumbprint)), "the key's own repeat of BeginTask is answered");
    }

    [Test]
    public async Task Policy_SenderConstrainedAgentOrScope_RefusesUnboundCalls()
    {
        using var key = DpopKey.Generate();
        using var billing = Broker.ClientFor(Billing);
        using var billingDpop = new CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(Billing)) { DpopKey = key };
        using var triage = Broker.ClientFor(Triage);

        var agentWide = await Refused.CallAsync(() => billing.BeginTaskAsync(Begin("invoices:read")));
        var scoped = await Refused.CallAsync(() => triage.BeginTaskAsync(Begin("tickets:read", "tickets:comment")));
        var unbound = await triage.BeginTaskAsync(Begin("tickets:read"));
        var bound = await billingDpop.BeginTaskAsync(Begin("invoices:read"));

        Assert.Multiple(() =>
        {
            foreach (var e in new[] { agentWide, scoped })
            {
                Assert.That((e.StatusCode, e.ErrorInfo?.Reason), Is.EqualTo((StatusCode.PermissionDenied, "SENDER_CONSTRAINT_REQUIRED")), e.Message);
                Assert.That(e.Message, Does.Contain("agent.sender_constrained"));
            }

            Assert.That(scoped.Message, Does.Contain("tickets:comment"));
            Assert.That(Jkt(unbound.AccessToken), Is.Null, "tickets:read alone needs no binding");
            Assert.That(Jkt(bound.AccessToken), Is.EqualTo(key.Thumbprint));
        });
    }

    [Test]
    public async Task UnboundLease_IssueTokenForAConstrainedScope_NeedsAProof()
    {
        using var key = DpopKey.Generate();
        using var triage = Broker.ClientFor(Triage);
        using var triageDpop = new CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(Triage)) { DpopKey = key };
        var begun = await triageDpop.BeginTaskAsync(Begin("tickets:read", "tickets:comment"));

        var stillBound = await Refused.CallAsync(() => triage.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId, Scopes = { "tickets:read" } }));

        Assert.That(stillBound.ErrorInfo?.Reason, Is.EqualTo("DPOP_MISSING"), stillBound.Message);
    }

    [Test]
    public async Task ApprovedDpopBoundLease_WatchApprovalsToken_IsBoundToTheKeyBeginTaskProved()
    {
        using var key = DpopKey.Generate();
        using var agent = new CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(Triage)) { DpopKey = key };
        using var operators = Broker.OperatorClient();
        var begun = await agent.BeginTaskAsync(Begin("tickets:export"));
        Assert.That(begun.ApprovalId, Is.Not.Empty);

        await operators.DecideApprovalAsync(new DecideApprovalRequest
        {
            ApprovalId = begun.ApprovalId, Verdict = DecideApprovalRequest.Types.Verdict.Approve, Reason = "ok",
        });
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        ApprovalStatus? approved = null;
        await foreach (var status in agent.WatchApprovalAsync(begun.ApprovalId, bounded.Token))
        {
            approved = status;
        }

        Assert.That(approved!.State, Is.EqualTo("approved"));
        Assert.That(Jkt(approved.AccessToken), Is.EqualTo(key.Thumbprint), "no proof on WatchApproval: the lease's key binds the token");
    }

    [Test]
    public async Task AddCredBrokerClient_UseDpopWithAKeyFile_BindsTokensToThatKey()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var keyFile = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(keyFile, ec.ExportPkcs8PrivateKeyPem());
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["CredBroker:Client:Address"] = Broker.AgentAddress.ToString(),
                ["CredBroker:Client:UseDpop"] = "true",
                ["CredBroker:Client:DpopKeyFile"] = keyFile,
            });
            builder.Services.AddCredBrokerClient(builder.Configuration, o => o.CredentialSource = _ => ValueTask.FromResult(Broker.WorkloadToken(Triage)));
            using var host = builder.Build();
            await host.StartAsync();

            var begun = await host.Services.GetRequiredService<CredBrokerClient>().BeginTaskAsync(Begin("tickets:read"));

            Assert.That(Jkt(begun.AccessToken), Is.EqualTo(DpopProofs.Thumbprint(ec)));
            await host.StopAsync();
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Test]
    public void ClientOptions_DpopKeyFileWithoutUseDpop_IsNamed()
    {
        var failures = new CredBrokerClientOptionsValidator().Validate(null, new CredBrokerClientOptions
        {
            Address = new Uri("http://127.0.0.1:5401"), Credential = "x", DpopKeyFile = "/nonexistent/dpop.pem", DpopUri = new Uri("http://b.example/?q=1"),
        }).Failures!;

        Assert.That(failures, Has.Some.EqualTo("CredBroker:Client:DpopKeyFile: the file '/nonexistent/dpop.pem' does not exist."));
        Assert.That(failures, Has.Some.StartWith("CredBroker:Client:DpopKeyFile is set but CredBroker:Client:UseDpop is false"));
        Assert.That(failures, Has.Some.StartWith("CredBroker:Client:DpopUri must be"));
    }

    private static IEnumerable<TestCaseData> BrokenProofs()
    {
        TestCaseData Case(string reason, StatusCode code, Func<ECDsa, string, string> proof, string name) =>
            new TestCaseData(reason, code, proof).SetName("Proof_" + name + "_IsRefusedWith_" + reason);

        yield return Case("DPOP_MALFORMED", StatusCode.InvalidArgument, (_, _) => "not.a.jws!", "NotAJws");
        yield return Case("DPOP_SIZE", StatusCode.InvalidArgument, (k, htu) => DpopProofs.Make(k, htu, payload: p => p["pad"] = new string('a', 5000)), "Oversized");
        yield return Case("DPOP_TYP", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, header: h => h["typ"] = "JWT"), "TypJwt");
        yield return Case("DPOP_TYP", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, header: h => h["kid"] = "k1"), "ExtraHeaderMember");
        yield return Case("DPOP_ALG", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, header: h => h["alg"] = "none", sign: _ => []), "AlgNone");
        yield return Case("DPOP_ALG", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, header: h => h["alg"] = "HS256",
            sign: data => HMACSHA256.HashData(Encoding.ASCII.GetBytes("secret"), data)), "AlgHs256");
        yield return Case("DPOP_JWK", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu,
            header: h => ((JsonObject)h["jwk"]!)["d"] = DpopProofs.B64(k.ExportParameters(true).D)), "PrivateKeyInJwk");
        yield return Case("DPOP_JWK", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, header: h => h.Remove("jwk")), "NoJwk");
        yield return Case("DPOP_JWK", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu,
            header: h => ((JsonObject)h["jwk"]!)["y"] = DpopProofs.B64(new byte[32])), "PointNotOnCurve");
        yield return Case("DPOP_SIGNATURE", StatusCode.Unauthenticated, (k, htu) =>
        {
            using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            return DpopProofs.Make(k, htu, sign: data => other.SignData(data, HashAlgorithmName.SHA256));
        }, "SignedByAnotherKey");
        yield return Case("DPOP_HTM", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, payload: p => p["htm"] = "GET"), "HtmGet");
        yield return Case("DPOP_HTU", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu.Replace("BeginTask", "IssueToken")), "OtherMethod");
        yield return Case("DPOP_HTU", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu.Replace("127.0.0.1:", "127.0.0.1:1")), "OtherPort");
        yield return Case("DPOP_HTU", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu.Replace("http:", "https:")), "OtherScheme");
        yield return Case("DPOP_IAT", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, now: DateTimeOffset.UtcNow.AddMinutes(-5)), "Stale");
        yield return Case("DPOP_IAT", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, now: DateTimeOffset.UtcNow.AddMinutes(2)), "FromTheFuture");
        yield return Case("DPOP_IAT", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, payload: p => p["iat"] = "now"), "IatNotANumber");
        yield return Case("DPOP_JTI", StatusCode.Unauthenticated, (k, htu) => DpopProofs.Make(k, htu, payload: p => p.Remove("jti")), "NoJti");
    }

    [TestCaseSource(nameof(BrokenProofs))]
    public async Task EachProofCheck_RefusesWithItsOwnReason(string reason, StatusCode code, Func<ECDsa, string, string> proof)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var agent = Broker.ClientFor(Triage);
        var request = Begin("tickets:read");

        var error = await Refused.CallAsync(() => agent.Broker.BeginTaskAsync(request, Dpop(proof(key, Htu("BeginTask"))), DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.That((error.StatusCode, error.ErrorInfo?.Reason), Is.EqualTo((code, reason)), error.Message);
        Assert.That(error.Status.Detail, Does.StartWith("DPoP proof refused (" + reason.ToLowerInvariant() + ")"));
        var leases = await Broker.OperatorClient().ListLeasesAsync(new ListLeasesRequest { AgentId = "triage-agent", PageSize = 500 });
        Assert.That(leases.Leases.Select(l => l.TaskId), Does.Not.Contain(request.TaskId), "a refused proof opens no lease");
    }

    [Test]
    public async Task ReplayedProof_IsRefused_AndTwoProofHeadersAreInvalid()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var agent = Broker.ClientFor(Triage);
        var proof = DpopProofs.Make(key, Htu("BeginTask"));
        var first = await agent.Broker.BeginTaskAsync(Begin("tickets:read"), Dpop(proof), DateTime.UtcNow.AddSeconds(30));

        var replay = await Refused.CallAsync(() => agent.Broker.BeginTaskAsync(Begin("tickets:read"), Dpop(proof), DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        var two = await Refused.CallAsync(() => agent.Broker.BeginTaskAsync(Begin("tickets:read"),
            new Metadata { { "dpop", DpopProofs.Make(key, Htu("BeginTask")) }, { "dpop", DpopProofs.Make(key, Htu("BeginTask")) } },
            DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.That(Jkt(first.AccessToken), Is.EqualTo(DpopProofs.Thumbprint(key)));
        Assert.That((replay.StatusCode, replay.ErrorInfo?.Reason), Is.EqualTo((StatusCode.Unauthenticated, "DPOP_REPLAY")), replay.Message);
        Assert.That((two.StatusCode, two.ErrorInfo?.Reason), Is.EqualTo((StatusCode.InvalidArgument, "DPOP_MULTIPLE")), two.Message);
    }

    [Test]
    public async Task ProofMadeByPython_IsAccepted_AndItsThumbprintIsTheTokensJkt([Values("ES256", "PS256")] string alg)
    {
        using var agent = Broker.ClientFor(Triage);
        var (proof, jkt) = Python(alg, "POST", Htu("BeginTask"));

        var begun = await agent.Broker.BeginTaskAsync(Begin("tickets:read", "tickets:comment"), Dpop(proof), DateTime.UtcNow.AddSeconds(30));

        Assert.That(Jkt(begun.AccessToken), Is.EqualTo(jkt), "Python's RFC 7638 thumbprint is the broker's cnf.jkt");
    }

    [Test]
    public async Task ProofMadeByPython_ForAnotherMethodOrStale_IsRefused()
    {
        using var agent = Broker.ClientFor(Triage);
        var (wrongMethod, _) = Python("ES256", "POST", Htu("RenewLease"));
        var (stale, _) = Python("ES256", "POST", Htu("BeginTask"), iatOffsetSeconds: -600);
        var (get, _) = Python("ES256", "GET", Htu("BeginTask"));

        var e1 = await Refused.CallAsync(() => agent.Broker.BeginTaskAsync(Begin("tickets:read"), Dpop(wrongMethod), DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        var e2 = await Refused.CallAsync(() => agent.Broker.BeginTaskAsync(Begin("tickets:read"), Dpop(stale), DateTime.UtcNow.AddSeconds(30)).ResponseAsync);
        var e3 = await Refused.CallAsync(() => agent.Broker.BeginTaskAsync(Begin("tickets:read"), Dpop(get), DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.That(new[] { e1.ErrorInfo?.Reason, e2.ErrorInfo?.Reason, e3.ErrorInfo?.Reason }, Is.EqualTo(new[] { "DPOP_HTU", "DPOP_IAT", "DPOP_HTM" }));
    }

    /// <summary>A proof by tests/interop/python/dpop_proof.py (Debian's python3-jwt and python3-cryptography).</summary>
    private static (string Proof, string Jkt) Python(string alg, string htm, string htu, int iatOffsetSeconds = 0)
    {
        var script = Path.Combine(Root(), "tests", "interop", "python", "dpop_proof.py");
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { script, alg, htm, htu, iatOffsetSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }

        using var python = Process.Start(start)!;
        var output = python.StandardOutput.ReadToEnd();
        var errors = python.StandardError.ReadToEnd();
        python.WaitForExit();
        Assert.That(python.ExitCode, Is.Zero, errors);
        using var json = JsonDocument.Parse(output);
        return (json.RootElement.GetProperty("proof").GetString()!, json.RootElement.GetProperty("jkt").GetString()!);
    }

    private static string Root()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CredBroker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("CredBroker.sln not found above the test directory.");
    }

    private static string DpopKeyThumbprintOf(DpopKey key)
    {
        var jwk = JsonNode.Parse(key.PublicJwk)!;
        var canonical = $"{{\"crv\":\"{jwk["crv"]}\",\"kty\":\"{jwk["kty"]}\",\"x\":\"{jwk["x"]}\",\"y\":\"{jwk["y"]}\"}}";
        return DpopProofs.B64(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }
}
