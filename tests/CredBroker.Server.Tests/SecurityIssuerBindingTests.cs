using System.Security.Cryptography;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Core.Policy.File;
using CredBroker.Testing;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 15: identity mappings (the policy file's <c>identities</c>, Identity:Issuers[].Workloads)
/// and operator grants are bound to the issuer that vouches for the subject. A broker trusting two
/// issuers gives the second issuer's credential for the same <c>sub</c> neither the first issuer's
/// agent nor its operator roles; entries that name no issuer while several are trusted stop the start.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityIssuerBindingTests
{
    private const string Other = "https://other-workloads.test";
    private const string BoundIdentity = "system:serviceaccount:support:triage-v2";

    private static string Policy(string identity) => ProductionBroker.AgentsYaml.Replace(
        "purpose: triage support tickets", $"purpose: triage support tickets\n    identities: ['{identity}']", StringComparison.Ordinal);

    private static string[] SecondIssuer(string jwksFile) =>
    [
        $"--CredBroker:Identity:Issuers:1:Issuer={Other}",
        $"--CredBroker:Identity:Issuers:1:Audience={ProductionBroker.BrokerAudience}",
        $"--CredBroker:Identity:Issuers:1:JwksFile={jwksFile}",
        $"--CredBroker:Operators:Issuers:1:Issuer={Other}",
        $"--CredBroker:Operators:Issuers:1:Audience={ProductionBroker.OperatorAudience}",
        $"--CredBroker:Operators:Issuers:1:JwksFile={jwksFile}",
    ];

    [Test]
    public async Task SameSubject_FromTheSecondIssuer_GetsNeitherTheAgentNorTheOperatorRole()
    {
        using var redis = RedisServer.Start();
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var jwks = Path.GetTempFileName();
        await File.WriteAllTextAsync(jwks, ProductionBroker.Jwks((otherKey, "other-kid")));
        try
        {
            await using var broker = new ProductionBroker(Policy($"{ProductionBroker.Issuer}|{BoundIdentity}"));
            await broker.StartAsync(redis.ConnectionString, [.. SecondIssuer(jwks),
                $"--CredBroker:Operators:Subjects:0={ProductionBroker.Issuer}|{ProductionBroker.Operator}",
                $"--CredBroker:Operators:Grants:0:Issuer={ProductionBroker.Issuer}",
                "--CredBroker:Operators:Grants:0:Group=sec-admins",
                "--CredBroker:Operators:Grants:0:Roles:0=admin"]);
            string FromOther(string subject, string audience = ProductionBroker.BrokerAudience, IDictionary<string, object>? claims = null) =>
                broker.WorkloadToken(subject, issuer: Other, key: otherKey, kid: "other-kid", audience: audience, claims: claims);

            // The first issuer's workload is the agent the policy binds to that issuer.
            using (var bound = broker.ClientFor(BoundIdentity))
            {
                var begun = await bound.BeginTaskAsync(new BeginTaskRequest { TaskId = "bound", Scopes = { "tickets:read" } });
                Assert.That(begun.GrantedScopes, Is.EqualTo(new[] { "tickets:read" }));
            }

            // The same sub from the second issuer is another workload: no agent, neither through the policy
            // file's identities nor through the first issuer's configured Workloads.
            foreach (var subject in new[] { BoundIdentity, "system:serviceaccount:support:triage" })
            {
                using var impostor = broker.ClientWithCredential(FromOther(subject));
                var refused = await Refused.CallAsync(() => impostor.BeginTaskAsync(new BeginTaskRequest { TaskId = "impostor", Scopes = { "tickets:read" } }));
                Assert.That((refused.StatusCode, refused.Detail), Is.EqualTo((StatusCode.PermissionDenied,
                    $"Workload '{subject}' is authenticated but maps to no agent; add it to an agent's identities.")), subject);
            }

            // Operators: alice and the sec-admins group are granted for the first issuer only.
            using (var alice = broker.OperatorClient())
            {
                Assert.That((await alice.ListLeasesAsync(new ListLeasesRequest())).Leases, Has.Count.EqualTo(1), "only the bound workload opened a lease");
            }

            var otherAlice = FromOther(ProductionBroker.Operator, ProductionBroker.OperatorAudience);
            var otherGroup = FromOther("mallory@example.com", ProductionBroker.OperatorAudience, new Dictionary<string, object> { ["groups"] = new[] { "sec-admins" } });
            foreach (var (credential, who) in new[] { (otherAlice, ProductionBroker.Operator), (otherGroup, "mallory@example.com") })
            {
                using var impostor = new CredBrokerOperatorClient(broker.OperatorAddress, () => credential);
                var refused = await Refused.CallAsync(() => impostor.ListLeasesAsync(new ListLeasesRequest()));
                Assert.That((refused.StatusCode, refused.Detail), Is.EqualTo((StatusCode.Unauthenticated, $"'{who}' is not an operator on this listener.")));
            }

        }
        finally
        {
            File.Delete(jwks);
        }
    }

    [Test]
    public async Task UnqualifiedEntries_WithTwoTrustedIssuers_StopTheStart_NamingTheEntry()
    {
        using var redis = RedisServer.Start();
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var jwks = Path.GetTempFileName();
        await File.WriteAllTextAsync(jwks, ProductionBroker.Jwks((otherKey, "other-kid")));
        try
        {
            await using (var ambiguousIdentity = new ProductionBroker(Policy(BoundIdentity)))
            {
                var error = Assert.ThrowsAsync<PolicyFileException>(() => ambiguousIdentity.StartAsync(redis.ConnectionString, [.. SecondIssuer(jwks),
                    $"--CredBroker:Operators:Subjects:0={ProductionBroker.Issuer}|{ProductionBroker.Operator}"]));
                Assert.That(error!.Message, Does.Contain($"agents[triage-agent].identities: '{BoundIdentity}' names no issuer")
                    .And.Contain($"'<issuer>|{BoundIdentity}'"));
            }

            await using (var ambiguousOperator = new ProductionBroker())
            {
                var error = Assert.ThrowsAsync<InvalidOperationException>(() => ambiguousOperator.StartAsync(redis.ConnectionString, SecondIssuer(jwks)));
                Assert.That(error!.Message, Does.StartWith($"CredBroker:Operators:Subjects:0 ('{ProductionBroker.Operator}') names no issuer, but 2 operator issuers are trusted"));
            }

            await using (var unknownIssuer = new ProductionBroker(Policy($"https://nobody.test|{BoundIdentity}")))
            {
                var error = Assert.ThrowsAsync<PolicyFileException>(() => unknownIssuer.StartAsync(redis.ConnectionString));
                Assert.That(error!.Message, Does.Contain("names 'https://nobody.test', which is not a trusted identity source"));
            }
        }
        finally
        {
            File.Delete(jwks);
        }
    }
}
