using System.Text;
using CredBroker.Core.Policy.File;
using CredBroker.Core.Tests.Policy;

namespace CredBroker.Core.Tests.Security;

/// <summary>
/// Issue 15, item 2: the policy parser ends every input — deep, huge, random, mutated — in a
/// document or a <see cref="PolicyFileException"/>; never another exception, never a stack overflow
/// (which would take the whole process, and with it this test run, down).
/// </summary>
[TestFixture]
public sealed class PolicyParserFuzzTests
{
    private static void ParsesOrRefuses(string yaml)
    {
        try
        {
            PolicyFile.Parse(yaml, "fuzz");
        }
        catch (PolicyFileException)
        {
        }
        catch (Exception e)
        {
            Assert.Fail($"{e.GetType().Name} instead of a PolicyFileException for input of {yaml.Length} characters starting '{Clip(yaml)}': {e}");
        }
    }

    private static string Clip(string s) => s.Length <= 60 ? s : s[..60];

    [TestCase("[", "]", 100_000)]
    [TestCase("{a: ", "}", 100_000)]
    [TestCase("- ", "", 20_000)]
    [TestCase("[", "", 200_000)]
    public void DeepFlowOrBlockNesting_IsRefusedNamingTheLimit(string open, string close, int depth)
    {
        var yaml = string.Concat(Enumerable.Repeat(open, depth)) + "x" + string.Concat(Enumerable.Repeat(close, depth));

        var error = Assert.Throws<PolicyLimitException>(() => PolicyFile.Parse(yaml, "deep.yaml"));

        Assert.That(error!.Message, Does.Contain("nesting deeper than " + PolicyFile.MaxNestingDepth));
    }

    [Test]
    public void DeepBlockMappings_AreRefusedNamingTheLimit()
    {
        var yaml = new StringBuilder();
        for (var i = 0; i < 1_000; i++)
        {
            yaml.Append(' ', i).Append("k").Append(i).Append(":\n");
        }

        yaml.Append(' ', 1_000).Append("v\n");
        var error = Assert.Throws<PolicyLimitException>(() => PolicyFile.Parse(yaml.ToString(), "deep.yaml"));
        Assert.That(error!.Message, Does.Contain("nesting deeper than"));
    }

    [Test]
    public void NestingAtTheLimit_IsStillParsed_AsAnOrdinaryError()
    {
        var depth = PolicyFile.MaxNestingDepth;
        var yaml = "agents: " + string.Concat(Enumerable.Repeat("[", depth - 1)) + string.Concat(Enumerable.Repeat("]", depth - 1));

        var error = Assert.Throws<PolicyFileException>(() => PolicyFile.Parse(yaml, "ok-depth.yaml"));

        Assert.That(error, Is.Not.InstanceOf<PolicyLimitException>());
    }

    [Test]
    public void OversizedInput_IsRefusedNamingTheLimit()
    {
        var yaml = "# " + new string('x', PolicyFile.MaxFileBytes);

        var error = Assert.Throws<PolicyLimitException>(() => PolicyFile.Parse(yaml, "big.yaml"));

        Assert.That(error!.Message, Does.Contain(PolicyFile.MaxFileBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public void TheSamplePolicy_StillLoads() => Assert.That(SamplePolicy.Load().Agents.All, Is.Not.Empty);

    [Test]
    public void RandomGarbage_IsAlwaysAPolicyFileException()
    {
        var random = new Random(15_002);
        const string alphabet = "[]{}:-,?!&*#|>'\"%@` \t\n\r\\abcxyz0129.\u00e9\u0000\u0085\u2028\ud800";
        for (var i = 0; i < 3_000; i++)
        {
            var length = random.Next(1, 400);
            var text = new StringBuilder(length);
            for (var j = 0; j < length; j++)
            {
                text.Append(alphabet[random.Next(alphabet.Length)]);
            }

            ParsesOrRefuses(text.ToString());
        }
    }

    [Test]
    public void MutatedSamplePolicy_IsAlwaysADocumentOrAPolicyFileException()
    {
        var sample = File.ReadAllText(SamplePolicy.Path_);
        var random = new Random(15_0021);
        const string inserts = "[]{}:-,&*!|>\"'\n  \t#%@0-1e999~null99999999999999999999";
        for (var i = 0; i < 1_500; i++)
        {
            var text = new StringBuilder(sample);
            for (var m = random.Next(1, 6); m > 0; m--)
            {
                var at = random.Next(text.Length);
                switch (random.Next(3))
                {
                    case 0:
                        text.Remove(at, Math.Min(random.Next(1, 20), text.Length - at));
                        break;
                    case 1:
                        text.Insert(at, inserts.Substring(random.Next(inserts.Length - 4), random.Next(1, 4)));
                        break;
                    default:
                        text[at] = inserts[random.Next(inserts.Length)];
                        break;
                }
            }

            ParsesOrRefuses(text.ToString());
        }
    }

    [Test]
    public void AnchorsAndAliases_AndOddScalars_AreADocumentOrAPolicyFileException()
    {
        string[] inputs =
        [
            "a: &a [x, *a]",
            "agents: &x\n  - *x",
            "a: &a {b: *a}",
            "agents: [{id: a1, owner: o, purpose: p, audiences: [api], allowed_scopes: [x:read], max_token_ttl: 99999999999999999999d}]",
            "agents: [{id: a1, owner: o, purpose: p, audiences: [api], allowed_scopes: [x:read], max_concurrent_leases: 99999999999999999999}]",
            "agents: [{id: a1, owner: o, purpose: p, audiences: [api], allowed_scopes: [x:read], max_token_ttl: -5m}]",
            "settings: {denial_burst: {threshold: 99999999999999999999, window: 1m, action: quarantine}}\nagents: []",
            "--- a\n--- b",
            "!!binary AAAA",
            "? [a, b]\n: c",
            "%YAML 9.9\n---\na: b",
            "\uFEFFagents: x",
            "",
        ];
        foreach (var input in inputs)
        {
            ParsesOrRefuses(input);
        }
    }
}
