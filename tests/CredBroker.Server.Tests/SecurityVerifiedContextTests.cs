using System.Text.Json;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 14: a context label the policy declares <c>verified_context</c> comes from a claim of
/// the workload credential, not from the agent. An asserted value that contradicts it (or that the
/// credential cannot vouch for) is PERMISSION_DENIED with rule <c>context.verified</c>; leaving the label
/// out does not dodge a context rule (the verified value is filled in); the granted context, with each
/// label's source, is in the lease (GetLease) and the token (<c>ctx</c>).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityVerifiedContextTests
{
    private static readonly string Policy = """
        context_labels:
          environment: [staging, prod]
          data_class: [public, pii]
        verified_context:
          environment: { claim: env }
        context_rules:
          - id: no-comments-in-prod
            when: { environment: [prod] }
            scopes: [tickets:comment]
            action: deny
        """ + "\n" + ProductionBroker.AgentsYaml;

    private const string Triage = "system:serviceaccount:support:triage";

    [Test]
    public async Task VerifiedLabels_ComeFromTheCredential_AndAreRecordedWithTheirSource()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker(Policy);
        await broker.StartAsync(redis.ConnectionString);
        using var prod = broker.ClientWithCredential(broker.WorkloadToken(Triage, claims: new Dictionary<string, object> { ["env"] = "prod" }));
        using var noClaim = broker.ClientFor(Triage);
        using var admin = broker.OperatorClient();

        // Asserting another environment than the credential's is refused, naming the rule.
        await AssertVerifiedRefusal(() => prod.BeginTaskAsync(Request("staging-claimed", "tickets:comment", ("environment", "staging"))), "contradicts the verified value 'prod'");

        // A credential without the claim cannot back the label: asserting it is refused.
        await AssertVerifiedRefusal(() => noClaim.BeginTaskAsync(Request("unbacked", "tickets:comment", ("environment", "staging"))), "does not carry");

        // Leaving the label out does not dodge the prod rule: the verified value applies.
        var dodged = await Refused.CallAsync(() => prod.BeginTaskAsync(Request("label-left-out", "tickets:comment")));
        Assert.That(dodged.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), dodged.Detail);
        Assert.That(dodged.GetDetail<ErrorInfo>()?.Metadata["rules"], Does.Contain("context.no-comments-in-prod"), dodged.Detail);

        // Nothing was opened by the refusals.
        Assert.That((await admin.ListLeasesAsync(new ListLeasesRequest())).Leases, Is.Empty);

        // Granted: the verified label (from claim env) and the asserted one, in the token and the lease.
        var begun = await prod.BeginTaskAsync(Request("granted", "tickets:read", ("data_class", "pii"), ("environment", "prod")));
        var ctx = Payload(begun.AccessToken).GetProperty("ctx");
        Assert.That(ctx.GetProperty("environment").GetProperty("value").GetString(), Is.EqualTo("prod"));
        Assert.That(ctx.GetProperty("environment").GetProperty("source").GetString(), Is.EqualTo("claim:env"));
        Assert.That(ctx.GetProperty("data_class").GetProperty("value").GetString(), Is.EqualTo("pii"));
        Assert.That(ctx.GetProperty("data_class").GetProperty("source").GetString(), Is.EqualTo("asserted"));

        var lease = await admin.GetLeaseAsync(begun.LeaseId);
        Assert.That(lease.Context.Select(c => (c.Key, c.Value, c.Source)), Is.EqualTo(new[] { ("data_class", "pii", "asserted"), ("environment", "prod", "claim:env") }));

        // Tokens minted later under the lease carry the same context.
        var issued = await prod.IssueTokenAsync(new IssueTokenRequest { LeaseId = begun.LeaseId });
        Assert.That(Payload(issued.AccessToken).GetProperty("ctx").GetProperty("environment").GetProperty("source").GetString(), Is.EqualTo("claim:env"));

        // Without verified labels in play, asserted labels stay asserted (and no claim is needed).
        var staging = await noClaim.BeginTaskAsync(Request("asserted-only", "tickets:comment", ("data_class", "public")));
        Assert.That(Payload(staging.AccessToken).GetProperty("ctx").EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "data_class" }));
    }

    private static BeginTaskRequest Request(string taskId, string scope, params (string Key, string Value)[] context)
    {
        var request = new BeginTaskRequest { TaskId = taskId, Scopes = { scope } };
        foreach (var (key, value) in context)
        {
            request.Context[key] = value;
        }

        return request;
    }

    private static async Task AssertVerifiedRefusal(Func<Task<BeginTaskResponse>> call, string because)
    {
        var error = await Refused.CallAsync(call);
        Assert.That(error.StatusCode, Is.EqualTo(StatusCode.PermissionDenied), error.Detail);
        Assert.That(error.GetDetail<ErrorInfo>()?.Metadata["rules"], Is.EqualTo("context.verified"), error.Detail);
        Assert.That(error.Detail, Does.Contain("Context label").And.Contain(because));
    }

    private static JsonElement Payload(string jwt) =>
        JsonDocument.Parse(System.Buffers.Text.Base64Url.DecodeFromChars(jwt.Split('.')[1])).RootElement.Clone();
}
