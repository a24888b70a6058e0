using System.Text.Json;
using CredBroker.Core.Agents;
using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;
using CredBroker.Testing;

namespace CredBroker.Core.Tests;

/// <summary>What the minter writes for delegated leases and certificate-bound callers, and what the reader gives back.</summary>
public sealed class DelegatedMintingTests : IDisposable
{
    private const string Issuer = "https://broker.test";
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 9, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _clock = new(Start);
    private readonly SigningKey _key = SigningKey.Generate();

    public void Dispose() => _key.Dispose();

    private TokenMinter Minter => new(new StaticSigningKeys([_key]), Issuer, _clock);

    private TokenReader Reader => new(new StaticSigningKeys([_key]), Issuer, _clock);

    private static Lease Lease(string agent) => new()
    {
        LeaseId = LeaseIds.For(agent, "t"), AgentId = agent, TaskId = "t", Owner = "o@example.com", Purpose = "p", Audience = "api",
        Scopes = ["a:read"], State = LeaseState.Active, CreatedAt = Start, Deadline = Start.AddMinutes(10), MaxDeadline = Start.AddHours(1),
    };

    private static AgentDefinition Agent(string id) => new()
    {
        Id = id, Owner = "o@example.com", Purpose = "p", Audiences = ["api"], AllowedScopes = new HashSet<string> { "a:read" },
    };

    private static JsonElement Payload(string jwt) => JsonDocument.Parse(Base64Url.TryDecode(jwt.Split('.')[1])!).RootElement;

    [Test]
    public void PlainLease_AgentIsSubjectAndActor_NoChainNoBinding()
    {
        var token = Minter.Mint(Lease("agent-a"), Agent("agent-a"), ["a:read"], "api");

        var p = Payload(token.AccessToken);
        Assert.That(p.GetProperty("sub").GetString(), Is.EqualTo("agent-a"));
        Assert.That(p.GetProperty("act").GetRawText(), Is.EqualTo("""{"sub":"agent-a"}"""));
        Assert.That(p.TryGetProperty("parent_lease_ids", out _) || p.TryGetProperty("cnf", out _), Is.False);
    }

    [Test]
    public void DelegatedLease_SubjectIsThePrincipal_ActorsNest_ParentsListed()
    {
        var lease = Lease("agent-c") with { Subject = "alice", Actors = ["agent-b", "agent-a"], ParentLeaseIds = ["l-b", "l-a"] };

        var token = Minter.Mint(lease, Agent("agent-c"), ["a:read"], "api");

        var p = Payload(token.AccessToken);
        Assert.That(p.GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That(p.GetProperty("client_id").GetString(), Is.EqualTo("agent-c"));
        Assert.That(p.GetProperty("act").GetRawText(), Is.EqualTo("""{"sub":"agent-c","act":{"sub":"agent-b","act":{"sub":"agent-a"}}}"""));
        Assert.That(p.GetProperty("parent_lease_ids").GetRawText(), Is.EqualTo("""["l-b","l-a"]"""));
        var read = Reader.Read(token.AccessToken)!;
        Assert.That((read.Subject, read.ActorSubject), Is.EqualTo(("alice", "agent-c")));
        Assert.That(read.Actors, Is.EqualTo(new[] { "agent-b", "agent-a" }));
        Assert.That(read.ParentLeaseIds, Is.EqualTo(new[] { "l-b", "l-a" }));
    }

    [Test]
    public void CertificateThumbprint_IsWrittenAsCnfX5tS256()
    {
        var token = Minter.Mint(Lease("agent-a"), Agent("agent-a"), ["a:read"], "api", "dGh1bWJwcmludA");

        Assert.That(Payload(token.AccessToken).GetProperty("cnf").GetRawText(), Is.EqualTo("""{"x5t#S256":"dGh1bWJwcmludA"}"""));
        Assert.That(Reader.Read(token.AccessToken)!.CertificateThumbprint, Is.EqualTo("dGh1bWJwcmludA"));
    }

    [Test]
    public void DeepestAllowedChain_StaysReadableAndUnder4KB()
    {
        var depth = Delegation.DelegationOptions.MaxAllowedDepth;
        var actors = Enumerable.Range(0, depth).Select(i => $"agent-with-a-rather-long-name-{i:00}-{new string('x', 30)}").ToList();
        var lease = Lease("agent-leaf") with
        {
            Subject = new string('u', 256), Actors = actors, ParentLeaseIds = actors.Select(a => LeaseIds.For(a, "t")).ToList(),
        };

        var token = Minter.Mint(lease, Agent("agent-leaf"), ["a:read"], "api", new string('t', 43));

        Assert.That(token.AccessToken.Length, Is.LessThanOrEqualTo(TokenMinter.MaxTokenBytes));
        Assert.That(Reader.Read(token.AccessToken)?.Actors, Has.Count.EqualTo(depth), "the reader's JSON depth limit admits the deepest chain");
    }
}
