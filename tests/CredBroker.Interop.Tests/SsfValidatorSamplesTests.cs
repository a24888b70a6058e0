using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;

namespace CredBroker.Interop.Tests;

/// <summary>
/// samples/python-validator (PyJWT, SSF poll) and samples/node-validator (jose, SSF push) as separate
/// processes against a production broker on Redis: a valid token is accepted, a missing scope refused,
/// a completed or revoked lease's token refused soon after (learned from the SSF stream), and a
/// validator that was down catches up on what it missed when it comes back.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SsfValidatorSamplesTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";
    private readonly string _dir = Directory.CreateTempSubdirectory("credbroker-validators-").FullName;
    private readonly string _secret = "validators-" + Guid.NewGuid().ToString("N");
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private string _root = null!;
    private Sample _python = null!;
    private Sample _node = null!;

    protected override string[] BrokerArguments
    {
        get
        {
            File.WriteAllText(Path.Combine(_dir, "receiver.secret"), _secret);
            return
            [
                "--CredBroker:Ssf:Receivers:0:Id=tickets-api",
                $"--CredBroker:Ssf:Receivers:0:SecretFile={Path.Combine(_dir, "receiver.secret")}",
                "--CredBroker:Ssf:AllowHttpPushEndpoints=true",
                "--CredBroker:Ssf:PushRetryInitial=00:00:00.100",
                "--CredBroker:Ssf:PushRetryMax=00:00:00.500",
                "--CredBroker:Ssf:StreamRefreshInterval=00:00:00.250",
                "--CredBroker:Ssf:MaxLongPoll=00:00:05",
            ];
        }
    }

    [OneTimeSetUp]
    public async Task StartValidatorsAsync()
    {
        _root = FindRoot();
        Assert.That(Directory.Exists(Path.Combine(_root, "samples", "node-validator", "node_modules", "jose")), Is.True,
            "samples/node-validator needs `npm ci` (tests/run.sh runs it)");
        _python = await StartPythonAsync(RedisServer.FreePort());
        _node = await StartNodeAsync(RedisServer.FreePort());
    }

    [OneTimeTearDown]
    public void StopValidators()
    {
        _python?.Dispose();
        _node?.Dispose();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private IEnumerable<Sample> Validators => [_python, _node];

    [Test]
    public async Task ValidToken_WithTheScope_IsAccepted_ByBoth()
    {
        using var client = Broker.ClientFor(Triage);
        var open = await BeginAsync(client, "tickets:comment");

        foreach (var v in Validators)
        {
            var (status, body) = await CallAsync(v, open.AccessToken);
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK), $"{v.Name}: {body}");
            Assert.That((string?)body["lease_id"], Is.EqualTo(open.LeaseId));
        }

        await client.CompleteTaskAsync(open.LeaseId);
    }

    [Test]
    public async Task TokenWithoutTheScope_WrongAudience_OrForged_IsRefused_ByBoth()
    {
        using var client = Broker.ClientFor(Triage);
        var readOnly = await BeginAsync(client, "tickets:read");
        var otherAudience = await BeginAsync(client, "kb:read", audience: "kb-api");
        var forged = readOnly.AccessToken[..^4] + (readOnly.AccessToken[^4..] == "AAAA" ? "BBBB" : "AAAA");

        foreach (var v in Validators)
        {
            var (scope, scopeBody) = await CallAsync(v, readOnly.AccessToken);
            var (audience, _) = await CallAsync(v, otherAudience.AccessToken);
            var (signature, _) = await CallAsync(v, forged);
            var (none, _) = await CallAsync(v, null);
            Assert.That(scope, Is.EqualTo(HttpStatusCode.Forbidden), v.Name);
            Assert.That((string?)scopeBody["error"], Is.EqualTo("insufficient_scope"), v.Name);
            Assert.That((audience, signature, none), Is.EqualTo((HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized)), v.Name);
        }

        await client.CompleteTaskAsync(readOnly.LeaseId);
        await client.CompleteTaskAsync(otherAudience.LeaseId);
    }

    [Test]
    public async Task AfterCompleteTask_TheTokenIsRefusedSoon_ByBoth()
    {
        using var client = Broker.ClientFor(Triage);
        var open = await BeginAsync(client, "tickets:comment");
        foreach (var v in Validators)
        {
            Assert.That((await CallAsync(v, open.AccessToken)).Status, Is.EqualTo(HttpStatusCode.OK), v.Name);
        }

        await client.CompleteTaskAsync(open.LeaseId);

        foreach (var v in Validators)
        {
            await UntilRefusedAsync(v, open.AccessToken);
        }
    }

    [Test]
    public async Task AfterRevokeLease_TheTokenIsRefusedSoon_ByBoth()
    {
        using var client = Broker.ClientFor(Triage);
        var open = await BeginAsync(client, "tickets:comment");
        using var operators = Broker.OperatorClient();

        await operators.RevokeLeaseAsync(open.LeaseId, "compromised runtime");

        foreach (var v in Validators)
        {
            await UntilRefusedAsync(v, open.AccessToken);
        }
    }

    [Test]
    public async Task AValidatorThatWasDown_CatchesUpOnRevocationsItMissed()
    {
        using var client = Broker.ClientFor(Triage);
        var open = await BeginAsync(client, "tickets:comment");
        foreach (var v in Validators)
        {
            Assert.That((await CallAsync(v, open.AccessToken)).Status, Is.EqualTo(HttpStatusCode.OK), v.Name);
        }

        var (pythonPort, nodePort) = (_python.Port, _node.Port);
        _python.Dispose();
        _node.Dispose();
        await client.CompleteTaskAsync(open.LeaseId);
        // Same state files (stream id; node: push secret), so each resumes its stream at the broker.
        _python = await StartPythonAsync(pythonPort);
        _node = await StartNodeAsync(nodePort);

        foreach (var v in Validators)
        {
            await UntilRefusedAsync(v, open.AccessToken);
        }

        using var streams = new HttpRequestMessage(HttpMethod.Get, new Uri(Broker.HttpAddress, "/ssf/streams"));
        streams.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _secret);
        var list = JsonNode.Parse(await (await _http.SendAsync(streams)).Content.ReadAsStringAsync())!.AsArray();
        Assert.That(list.Count, Is.EqualTo(2), "each validator reused its stream instead of creating another");
    }

    [Test]
    public async Task DpopBoundToken_NeedsAProofByItsKey_ForThisRequest_OnceOnly_ByBoth()
    {
        using var key = Validation.DpopKey.Generate();
        using var otherKey = Validation.DpopKey.Generate();
        using var client = new CredBrokerClient(Broker.AgentAddress, () => Broker.WorkloadToken(Triage)) { DpopKey = key };
        var open = await BeginAsync(client, "tickets:comment");
        var token = open.AccessToken;

        foreach (var v in Validators)
        {
            var resource = new Uri($"http://127.0.0.1:{v.Port}/resource");
            var proof = key.CreateProof("GET", resource, token);
            var (ok, okBody) = await CallAsync(v, token, "DPoP", proof);
            var (replayed, replayBody) = await CallAsync(v, token, "DPoP", proof);
            var (asBearer, bearerBody) = await CallAsync(v, token);
            var (noProof, _) = await CallAsync(v, token, "DPoP");
            var (wrongKey, wrongKeyBody) = await CallAsync(v, token, "DPoP", otherKey.CreateProof("GET", resource, token));
            var (wrongUri, wrongUriBody) = await CallAsync(v, token, "DPoP", key.CreateProof("GET", new Uri($"http://127.0.0.1:{v.Port}/other"), token));
            var (wrongMethod, _) = await CallAsync(v, token, "DPoP", key.CreateProof("POST", resource, token));
            var (noAth, noAthBody) = await CallAsync(v, token, "DPoP", key.CreateProof("GET", resource));

            Assert.That(ok, Is.EqualTo(HttpStatusCode.OK), $"{v.Name}: {okBody}");
            Assert.That((replayed, (string?)replayBody["error_description"]), Is.EqualTo((HttpStatusCode.Unauthorized, "the proof was replayed (jti)")), v.Name);
            Assert.That(asBearer, Is.EqualTo(HttpStatusCode.Unauthorized), v.Name);
            Assert.That((string?)bearerBody["error_description"], Does.Contain("DPoP-bound"), v.Name);
            Assert.That(noProof, Is.EqualTo(HttpStatusCode.Unauthorized), v.Name);
            Assert.That((wrongKey, (string?)wrongKeyBody["error_description"]), Is.EqualTo((HttpStatusCode.Unauthorized, "the proof key is not the key the token is bound to (cnf.jkt)")), v.Name);
            Assert.That(wrongUri, Is.EqualTo(HttpStatusCode.Unauthorized), $"{v.Name}: {wrongUriBody}");
            Assert.That(wrongMethod, Is.EqualTo(HttpStatusCode.Unauthorized), v.Name);
            Assert.That((string?)noAthBody["error_description"], Does.Contain("ath"), v.Name);
        }

        await client.CompleteTaskAsync(open.LeaseId);
    }

    // --- helpers ---
    private static Task<BeginTaskResponse> BeginAsync(CredBrokerClient client, string scope, string audience = "tickets-api") =>
        client.BeginTaskAsync(new BeginTaskRequest { TaskId = "val-" + Guid.NewGuid().ToString("N"), Scopes = { scope }, Audience = audience });

    private async Task UntilRefusedAsync(Sample v, string token)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var (status, body) = await CallAsync(v, token);
            if (status == HttpStatusCode.Unauthorized)
            {
                Assert.That((string?)body["error_description"], Does.Contain("revoked"), v.Name);
                return;
            }

            Assert.That(status, Is.AnyOf(HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable), $"{v.Name}: {body}");
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{v.Name} still accepts the token 30 s after its lease ended: {v.Output}");
            await Task.Delay(50);
        }
    }

    private async Task<(HttpStatusCode Status, JsonNode Body)> CallAsync(Sample v, string? token, string scheme = "Bearer", string? proof = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{v.Port}/resource");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue(scheme, token);
        }

        if (proof is not null)
        {
            request.Headers.Add("DPoP", proof);
        }

        using var response = await _http.SendAsync(request);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }

    private Task<Sample> StartPythonAsync(int port) => StartAsync("python-validator", port, "/usr/bin/python3",
        Path.Combine(_root, "samples", "python-validator", "validator.py"),
        body => (bool?)body["caught_up"] == true, "--max-staleness", "30", "--long-poll-timeout", "15");

    private Task<Sample> StartNodeAsync(int port) => StartAsync("node-validator", port, "node",
        Path.Combine(_root, "samples", "node-validator", "server.mjs"), body => body["stream_id"] is not null);

    private async Task<Sample> StartAsync(string name, int port, string file, string script, Func<JsonNode, bool> readiness, params string[] extra)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _root };
        foreach (var a in new[] { script, "--broker", Broker.HttpAddress.ToString().TrimEnd('/'), "--audience", "tickets-api", "--scope", "tickets:comment",
            "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--state-file", Path.Combine(_dir, name + ".state") }.Concat(extra))
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["SSF_RECEIVER_SECRET"] = _secret;
        var sample = new Sample(name, port, Process.Start(start)!);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                var health = JsonNode.Parse(await _http.GetStringAsync($"http://127.0.0.1:{port}/healthz"))!;
                if (readiness(health))
                {
                    return sample;
                }
            }
            catch (HttpRequestException)
            {
            }

            Assert.That(sample.Process.HasExited, Is.False, $"{name} exited during start: {sample.Output}");
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"{name} was not ready in 60 s: {sample.Output}");
            await Task.Delay(100);
        }
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CredBroker.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("CredBroker.sln not found above the test directory.");
    }

    private sealed class Sample : IDisposable
    {
        private readonly StringBuilder _output = new();

        public Sample(string name, int port, Process process)
        {
            (Name, Port, Process) = (name, port, process);
            process.OutputDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
            process.ErrorDataReceived += (_, e) => { lock (_output) { _output.AppendLine(e.Data); } };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public string Name { get; }

        public int Port { get; }

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit();
            }

            Process.Dispose();
        }
    }
}
