using System.Text;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using Grpc.Core;
using CredBroker.Testing;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 3: malformed compact JWTs are a clean refusal wherever a token is parsed —
/// Introspect answers active=false, a subject_token is INVALID_ARGUMENT or PERMISSION_DENIED with a
/// message, a workload credential is UNAUTHENTICATED — never UNKNOWN/INTERNAL, and the broker logs
/// no stack trace for them (checked on a replica running as a child process).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityMalformedTokenTests : ProductionBrokerFixture
{
    private const string Triage = "system:serviceaccount:support:triage";

    private static string B64(string s) => System.Buffers.Text.Base64Url.EncodeToString(Encoding.UTF8.GetBytes(s));

    private static string B64(byte[] b) => System.Buffers.Text.Base64Url.EncodeToString(b);

    /// <summary>Malformed tokens; some carry this broker's issuer, so they are routed to the broker's own token reader.</summary>
    private string[] Malformed()
    {
        var ours = B64($"{{\"iss\":\"{Broker.HttpAddress.ToString().TrimEnd('/')}\"}}");
        var header = B64("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"k\"}");
        return
        [
            "x",
            "a.b",
            "a.b.c.d.e",
            "!!!.???.***",
            "eyJ.eyJ.",
            "é.é.é",
            header + ".%%%.AAAA",
            header + "." + ours + ".A",
            header + "." + ours + "." + new string('A', 5000),
            B64("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"\\ud800\"}") + "." + ours + ".AAAA",
            B64("{\"alg\":\"ES256\",\"kid\":\"k\"}") + "." + B64("{\"iss\":\"\\ud800\"}") + ".AAAA",
            B64(new byte[] { 0xff, 0xfe, 0x80 }) + "." + B64(new byte[] { 0xc3, 0x28 }) + ".AAAA",
            B64("{") + "." + ours + ".AAAA",
            B64("[1]") + "." + B64("[1]") + ".AAAA",
            header + "." + B64(new string('[', 200)) + ".AAAA",
            new string('a', 7000) + ".b.c",
            "a\n.b\n.c\n",
        ];
    }

    [Test]
    public async Task Introspect_MalformedTokens_AreInactive_NeverAnError()
    {
        using var validator = Broker.ClientFor("system:serviceaccount:apis:tickets");
        foreach (var token in Malformed())
        {
            var response = await validator.IntrospectAsync(token);
            Assert.That(response.Active, Is.False, token);
        }
    }

    [Test]
    public void BeginTask_MalformedSubjectTokens_AreInvalidArgumentOrPermissionDenied_WithAMessage()
    {
        using var agent = Broker.ClientFor(Triage);
        foreach (var token in Malformed())
        {
            var request = new BeginTaskRequest { TaskId = "sub-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, SubjectToken = token };

            var error = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(request));

            Assert.That(error!.StatusCode, Is.AnyOf(StatusCode.InvalidArgument, StatusCode.PermissionDenied), token + ": " + error.Message);
            Assert.That(error.Message, Does.Contain("subject_token"), token);
        }
    }

    [Test]
    public void MalformedWorkloadCredentials_AreUnauthenticated()
    {
        foreach (var token in Malformed().Where(t => t.All(c => c is >= '\x21' and <= '\x7E')))
        {
            using var agent = Broker.ClientWithCredential(token);

            var error = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "cred-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } }));

            Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unauthenticated), token + ": " + error.Message);
        }
    }

    [Test]
    public async Task MalformedTokens_LeaveNoStackTraceInTheLog_OfAReplicaProcess()
    {
        using var replica = await Broker.StartReplicaProcessAsync(RedisUnderTest.ConnectionString);
        using var validator = new CredBrokerClient(replica.AgentAddress, () => Broker.WorkloadToken("system:serviceaccount:apis:tickets"));
        using var agent = new CredBrokerClient(replica.AgentAddress, () => Broker.WorkloadToken(Triage));
        foreach (var token in Malformed())
        {
            Assert.That((await validator.IntrospectAsync(token)).Active, Is.False);
            var error = Assert.ThrowsAsync<RpcException>(() => agent.BeginTaskAsync(new BeginTaskRequest
            {
                TaskId = "log-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" }, SubjectToken = token,
            }));
            Assert.That(error!.StatusCode, Is.Not.AnyOf(StatusCode.Unknown, StatusCode.Internal), error.Message);
        }

        // The replica is still healthy and logged no exception for any of them.
        Assert.That((await validator.IntrospectAsync("x")).Active, Is.False);
        Assert.That(replica.Output, Does.Not.Contain("Exception").And.Not.Contain("   at "), replica.Output);
    }
}
