using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using CredBroker.Contracts.V1;
using CredBroker.Server.WebConsole.Webhooks;
using CredBroker.Testing;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Console.Tests;

/// <summary>
/// Approval webhooks end to end: a pending approval is POSTed as a signed CloudEvent to the sample
/// receiver (samples/webhook-receiver, Python), which verifies signature and timestamp; failed
/// deliveries are retried with backoff; the receiver's own tests pass.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class WebhookTests
{
    private static readonly string Sample = Path.Combine(ConsoleEnvironment.RepositoryRoot, "samples", "webhook-receiver");
    private readonly string _dir = Directory.CreateTempSubdirectory("credbroker-webhooks-").FullName;

    [OneTimeTearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    private static async Task WaitForPortAsync(int port, Process process)
    {
        var deadline = DateTime.UtcNow + ConsoleEnvironment.Patience;
        while (true)
        {
            if (process.HasExited)
            {
                Assert.Fail("the receiver exited: " + await process.StandardError.ReadToEndAsync());
            }

            try
            {
                using var socket = new TcpClient();
                await socket.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the receiver did not listen");
                await Task.Delay(100);
            }
        }
    }

    private static Process StartReceiver(int port, string secretFile, string outFile, int failFirst)
    {
        var process = Process.Start(new ProcessStartInfo("/usr/bin/python3", ["-u", Path.Combine(Sample, "receiver.py"), "--port", port.ToString(), "--secret-file", secretFile, "--out", outFile, "--fail-first", failFirst.ToString()])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        // Drained, so a chatty receiver never blocks on a full pipe; standard error stays for the exit message.
        process.OutputDataReceived += (_, e) => TestContext.Progress.WriteLine(e.Data);
        process.BeginOutputReadLine();
        return process;
    }

    [Test]
    public async Task APendingApproval_IsDeliveredSignedToTheSampleReceiver_AfterRetries()
    {
        var secretFile = Path.Combine(_dir, "webhook-secret");
        await File.WriteAllTextAsync(secretFile, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        var outFile = Path.Combine(_dir, "events.jsonl");
        var port = RedisServer.FreePort();
        using var receiver = StartReceiver(port, secretFile, outFile, failFirst: 2);
        try
        {
            await WaitForPortAsync(port, receiver);
            using var redis = RedisServer.Start();
            await using var broker = new ProductionBroker();
            await broker.StartAsync(redis.ConnectionString,
                "--CredBroker:Console:PublicUrl=https://credbroker.example.test/",
                $"--CredBroker:Console:Webhooks:Endpoints:0:Url=http://127.0.0.1:{port}/hooks/credbroker",
                $"--CredBroker:Console:Webhooks:Endpoints:0:SecretFile={secretFile}",
                "--CredBroker:Console:Webhooks:InitialBackoff=00:00:00.100",
                "--CredBroker:Console:Webhooks:MaxBackoff=00:00:00.500");

            using var agent = broker.ClientFor(ConsoleEnvironment.Triage);
            var begun = await agent.BeginTaskAsync(new BeginTaskRequest
            {
                TaskId = "export-" + Guid.NewGuid().ToString("N")[..8], Purpose = "export for the review", Scopes = { "tickets:read", "tickets:export" },
                Audience = "tickets-api", Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)),
            });
            Assert.That(begun.ApprovalId, Is.Not.Empty);

            var deadline = DateTime.UtcNow + ConsoleEnvironment.Patience;
            while (!File.Exists(outFile) || (await File.ReadAllTextAsync(outFile)).Length == 0)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "no verified delivery reached the receiver");
                await Task.Delay(100);
            }

            using var line = JsonDocument.Parse((await File.ReadAllLinesAsync(outFile)).Single());
            var cloudEvent = line.RootElement.GetProperty("event");
            Assert.That(line.RootElement.GetProperty("delivery").GetString(), Is.EqualTo("3"), "two 503s, then the third attempt");
            Assert.That(cloudEvent.GetProperty("specversion").GetString(), Is.EqualTo("1.0"));
            Assert.That(cloudEvent.GetProperty("type").GetString(), Is.EqualTo(ApprovalWebhooks.EventType));
            Assert.That(cloudEvent.GetProperty("id").GetString(), Is.EqualTo("approval.requested/" + begun.ApprovalId), "stable per approval: receivers deduplicate by it");
            Assert.That(cloudEvent.GetProperty("source").GetString(), Is.EqualTo("https://credbroker.example.test"));
            var data = cloudEvent.GetProperty("data");
            Assert.That(data.GetProperty("approval_id").GetString(), Is.EqualTo(begun.ApprovalId));
            Assert.That(data.GetProperty("agent_id").GetString(), Is.EqualTo("triage-agent"));
            Assert.That(data.GetProperty("owner").GetString(), Is.EqualTo("support-team@example.com"));
            Assert.That(data.GetProperty("purpose").GetString(), Is.EqualTo("export for the review"));
            Assert.That(data.GetProperty("requested_scopes").EnumerateArray().Select(s => s.GetString()), Is.EquivalentTo(new[] { "tickets:read", "tickets:export" }));
            Assert.That(data.GetProperty("rule_ids").EnumerateArray().Select(s => s.GetString()), Does.Contain("agent.approval"));
            Assert.That(data.GetProperty("console_url").GetString(), Does.StartWith("https://credbroker.example.test/approvals"));
            Assert.That(data.GetProperty("expires_at").GetString(), Is.Not.Empty);
        }
        finally
        {
            receiver.Kill();
        }
    }

    [Test]
    public async Task AnEndpointThatIsDown_DoesNotHoldUpTheOthers_NorTheAgent()
    {
        var secretFile = Path.Combine(_dir, "second-secret");
        await File.WriteAllTextAsync(secretFile, "a-secret-of-at-least-thirty-two-bytes-for-the-test");
        var outFile = Path.Combine(_dir, "second.jsonl");
        var port = RedisServer.FreePort();
        using var receiver = StartReceiver(port, secretFile, outFile, failFirst: 0);
        try
        {
            await WaitForPortAsync(port, receiver);
            using var redis = RedisServer.Start();
            await using var broker = new ProductionBroker();
            await broker.StartAsync(redis.ConnectionString,
                $"--CredBroker:Console:Webhooks:Endpoints:0:Url=http://127.0.0.1:{RedisServer.FreePort()}/nobody-listens",
                $"--CredBroker:Console:Webhooks:Endpoints:0:SecretFile={secretFile}",
                $"--CredBroker:Console:Webhooks:Endpoints:1:Url=http://127.0.0.1:{port}/",
                $"--CredBroker:Console:Webhooks:Endpoints:1:SecretFile={secretFile}",
                "--CredBroker:Console:Webhooks:MaxAttempts=3",
                "--CredBroker:Console:Webhooks:InitialBackoff=00:00:00.050",
                "--CredBroker:Console:Webhooks:MaxBackoff=00:00:00.100");

            using var agent = broker.ClientFor(ConsoleEnvironment.Triage);
            var begun = await agent.BeginTaskAsync(new BeginTaskRequest
            {
                TaskId = "export-" + Guid.NewGuid().ToString("N")[..8], Purpose = "export", Scopes = { "tickets:export" }, Audience = "tickets-api",
            });
            Assert.That(begun.ApprovalId, Is.Not.Empty, "the agent's request is answered whatever the webhooks do");

            var deadline = DateTime.UtcNow + ConsoleEnvironment.Patience;
            while (!File.Exists(outFile) || (await File.ReadAllTextAsync(outFile)).Length == 0)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the working endpoint got nothing");
                await Task.Delay(100);
            }

            using var line = JsonDocument.Parse((await File.ReadAllLinesAsync(outFile)).Single());
            Assert.That(line.RootElement.GetProperty("delivery").GetString(), Is.EqualTo("1"));
            using var http = new HttpClient();
            Assert.That((await http.GetAsync(new Uri(broker.HttpAddress, "/healthz"))).StatusCode, Is.EqualTo(HttpStatusCode.OK), "the broker keeps running");
        }
        finally
        {
            receiver.Kill();
        }
    }

    [Test]
    public async Task TheSampleReceiver_RefusesForgedAndStaleDeliveries()
    {
        var secret = Encoding.ASCII.GetBytes("0123456789abcdef0123456789abcdef-console-tests");
        var secretFile = Path.Combine(_dir, "plain-secret");
        await File.WriteAllBytesAsync(secretFile, secret);
        var port = RedisServer.FreePort();
        using var receiver = StartReceiver(port, secretFile, Path.Combine(_dir, "forged.jsonl"), failFirst: 0);
        try
        {
            await WaitForPortAsync(port, receiver);
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var body = Encoding.UTF8.GetBytes("""{"specversion":"1.0","id":"approval.requested/l0d_t","type":"dev.credbroker.approval.requested","source":"x","data":{}}""");
            async Task<HttpStatusCode> PostAsync(string timestamp, string signature, byte[] content)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/") { Content = new ByteArrayContent(content) };
                request.Headers.Add(ApprovalWebhooks.TimestampHeader, timestamp);
                request.Headers.Add(ApprovalWebhooks.SignatureHeader, signature);
                using var response = await http.SendAsync(request);
                return response.StatusCode;
            }

            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString();
            var old = DateTimeOffset.UtcNow.AddMinutes(-10).ToUnixTimeSeconds().ToString();
            Assert.That(await PostAsync(now, ApprovalWebhooks.Sign(secret, now, body), body), Is.EqualTo(HttpStatusCode.OK), "the broker's signature verifies in Python");
            Assert.That(await PostAsync(now, ApprovalWebhooks.Sign(secret, now, body), body), Is.EqualTo(HttpStatusCode.OK), "a redelivery is acknowledged");
            Assert.That(await PostAsync(now, ApprovalWebhooks.Sign(Encoding.ASCII.GetBytes("another-secret-another-secret-another-secret"), now, body), body), Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(await PostAsync(now, ApprovalWebhooks.Sign(secret, now, body), [.. body, (byte)' ']), Is.EqualTo(HttpStatusCode.Unauthorized), "a changed body");
            Assert.That(await PostAsync(old, ApprovalWebhooks.Sign(secret, old, body), body), Is.EqualTo(HttpStatusCode.Unauthorized), "a stale (replayed) delivery");
        }
        finally
        {
            receiver.Kill();
        }
    }

    [Test]
    public async Task TheSampleReceiversOwnTests_Pass()
    {
        using var python = Process.Start(new ProcessStartInfo("/usr/bin/python3", ["-B", "-m", "unittest", "-v", "test_receiver"])
        {
            WorkingDirectory = Sample,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = python.StandardError.ReadToEndAsync();
        await python.WaitForExitAsync();
        Assert.That(python.ExitCode, Is.EqualTo(0), await output);
        Assert.That(await output, Does.Contain("OK"));
    }
}
