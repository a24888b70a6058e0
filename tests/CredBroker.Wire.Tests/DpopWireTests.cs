using System.Text.Json;
using CredBroker.Contracts.V1;
using CredBroker.Validation;
using Google.Rpc;

namespace CredBroker.Wire.Tests;

/// <summary>
/// DPoP on a dev broker, on the wire (raw HTTP/2): the proof rides in the <c>dpop</c> header, the
/// default agent-listener URIs are the listener's own address (127.0.0.1 and localhost), the dev
/// in-memory replay store refuses a proof's second use, and every refusal names its check.
/// </summary>
[TestFixture]
public sealed class DpopWireTests : WireTest
{
    private string Htu(string host = "127.0.0.1") => $"http://{host}:{Broker.Agent.Port}{BeginTask}";

    private static string? Jkt(BeginTaskResponse response)
    {
        var payload = response.AccessToken.Split('.')[1];
        using var claims = JsonDocument.Parse(Convert.FromBase64String(payload.Replace('-', '+').Replace('_', '/') + new string('=', (4 - (payload.Length % 4)) % 4)));
        return claims.RootElement.TryGetProperty("cnf", out var cnf) ? cnf.GetProperty("jkt").GetString() : null;
    }

    [TestCase("127.0.0.1")]
    [TestCase("localhost")]
    public async Task DevBroker_AcceptsAProofForItsOwnListener_AndBindsTheToken(string host)
    {
        using var key = DpopKey.Generate();

        var response = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth, ("dpop", key.CreateProof("POST", new Uri(Htu(host)))));

        AssertStatus(response, Code.Ok);
        Assert.That(Jkt(response.Single(BeginTaskResponse.Parser)), Is.EqualTo(key.Thumbprint));
    }

    [Test]
    public async Task DevBroker_RefusesAReplayedProof_FromItsInMemoryStore()
    {
        using var key = DpopKey.Generate();
        var proof = key.CreateProof("POST", new Uri(Htu()));

        var first = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth, ("dpop", proof));
        var second = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth, ("dpop", proof));

        AssertStatus(first, Code.Ok);
        AssertStatus(second, Code.Unauthenticated);
        Assert.That(second.Detail<ErrorInfo>()?.Reason, Is.EqualTo("DPOP_REPLAY"), second.Describe());
    }

    [Test]
    public async Task BinaryOrOversizedProofHeader_IsInvalidArgument()
    {
        var oversized = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth, ("dpop", "e30." + new string('x', 6000) + ".e30"));
        var binary = await UnaryAsync(Broker.Agent, BeginTask, ReadTask(), DevBroker.AgentAuth, ("dpop-bin", Convert.ToBase64String(new byte[] { 1, 2, 3 })));

        AssertStatus(oversized, Code.InvalidArgument);
        Assert.That(oversized.Detail<ErrorInfo>()?.Reason, Is.EqualTo("DPOP_SIZE"));
        AssertStatus(binary, Code.InvalidArgument);
        Assert.That(binary.Detail<ErrorInfo>()?.Reason, Is.EqualTo("DPOP_MULTIPLE"), binary.Describe());
    }
}
