using CredBroker.Validation;

namespace CredBroker.Validation.Tests;

public sealed class DenyListTests
{
    private static readonly DateTimeOffset T = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(60);

    [Test]
    public void RevokedLease_RevokesAnyAgentAndIssueTime()
    {
        var denyList = new DenyList();
        denyList.RevokeLease("lease-1", T.AddMinutes(10));

        Assert.Multiple(() =>
        {
            Assert.That(denyList.IsRevoked("lease-1", "agent", T.AddMinutes(5)), Is.True);
            Assert.That(denyList.IsRevoked("lease-2", "agent", T), Is.False);
        });
    }

    [Test]
    public void Prune_DropsLeaseOnlyAfterNotAfterPlusSkew()
    {
        var denyList = new DenyList(Skew, TimeSpan.FromHours(1));
        denyList.RevokeLease("lease-1", T);
        denyList.RevokeLease("lease-2", T.AddMinutes(30));

        denyList.Prune(T + Skew);
        Assert.That(denyList.IsRevoked("lease-1", "agent", T), Is.True, "still within the skew a validator accepts");

        denyList.Prune(T + Skew + TimeSpan.FromSeconds(1));
        Assert.Multiple(() =>
        {
            Assert.That(denyList.IsRevoked("lease-1", "agent", T), Is.False);
            Assert.That(denyList.IsRevoked("lease-2", "agent", T), Is.True);
            Assert.That(denyList.LeaseCount, Is.EqualTo(1));
        });
    }

    [Test]
    public void RevokeLease_Twice_KeepsTheLaterNotAfter()
    {
        var denyList = new DenyList(Skew, TimeSpan.FromHours(1));
        denyList.RevokeLease("lease-1", T.AddMinutes(30));
        denyList.RevokeLease("lease-1", T);

        denyList.Prune(T.AddMinutes(5));

        Assert.That(denyList.IsRevoked("lease-1", "agent", T), Is.True);
    }

    [Test]
    public void QuarantineEpoch_RevokesOnlyTokensIssuedBefore()
    {
        var denyList = new DenyList();
        denyList.QuarantineAgent("agent", T);

        Assert.Multiple(() =>
        {
            Assert.That(denyList.IsRevoked("lease-1", "agent", T.AddSeconds(-1)), Is.True);
            Assert.That(denyList.IsRevoked("lease-1", "agent", T), Is.False);
            Assert.That(denyList.IsRevoked("lease-1", "other-agent", T.AddSeconds(-1)), Is.False);
        });
    }

    [Test]
    public void QuarantineEpoch_OnlyMovesForward()
    {
        var denyList = new DenyList();
        denyList.QuarantineAgent("agent", T.AddMinutes(10));
        denyList.QuarantineAgent("agent", T);

        Assert.That(denyList.IsRevoked("lease-1", "agent", T.AddMinutes(5)), Is.True);
    }

    [Test]
    public void Prune_DropsEpochOnceEveryEarlierTokenIsPastMaxLifetime()
    {
        var denyList = new DenyList(Skew, TimeSpan.FromHours(1));
        denyList.QuarantineAgent("agent", T);

        denyList.Prune(T + TimeSpan.FromHours(1) + Skew);
        Assert.That(denyList.AgentCount, Is.EqualTo(1));

        denyList.Prune(T + TimeSpan.FromHours(1) + Skew + TimeSpan.FromSeconds(1));
        Assert.That(denyList.AgentCount, Is.Zero);
    }

    [Test]
    public async Task ConcurrentRevocationsAndChecks_AllLand()
    {
        var denyList = new DenyList();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 1000; i++)
            {
                denyList.RevokeLease($"lease-{w}-{i}", T);
                _ = denyList.IsRevoked($"lease-{w}-{i}", "agent", T);
            }
        })));

        Assert.That(denyList.LeaseCount, Is.EqualTo(8000));
    }
}
