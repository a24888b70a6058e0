using CredBroker.Core.Leases;

namespace CredBroker.Core.Tests;

/// <summary>
/// The sweeper wakes at the next deadline the store reports instead of after its idle wait. Found by the chaos run:
/// with the idle wait grown to 800 ms (±20 %), expiries were recorded up to 1.5 s after their deadline on a busy machine.
/// </summary>
public sealed class LeaseSweeperTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    [Test]
    public void AfterASweep_ItWaitsUntilJustAfterTheNextDeadline_WhenThatComesBeforeTheIdleWait()
    {
        var result = new SweepResult(0, TimeSpan.Zero) { NextDue = T0.AddMilliseconds(300) };

        var wait = LeaseSweeper.WaitAfter(result, TimeSpan.FromMilliseconds(800), T0);

        Assert.That(wait, Is.GreaterThan(TimeSpan.FromMilliseconds(300)).And.LessThanOrEqualTo(TimeSpan.FromMilliseconds(321)));
    }

    [Test]
    public void ADeadlineMomentsAway_StillWaitsTheMinimum_SoAReplicaNeverSweepsOncePerDeadline()
    {
        var result = new SweepResult(0, TimeSpan.Zero) { NextDue = T0.AddMilliseconds(2) };

        Assert.That(LeaseSweeper.WaitAfter(result, TimeSpan.FromMilliseconds(800), T0), Is.EqualTo(LeaseSweeper.MinWait));
        Assert.That(LeaseSweeper.WaitAfter(result, TimeSpan.FromMilliseconds(60), T0), Is.EqualTo(TimeSpan.FromMilliseconds(60)), "never past the idle wait");
    }

    [TestCase(null)]
    [TestCase(-50)]
    [TestCase(0)]
    [TestCase(5_000)]
    public void Otherwise_ItWaitsItsIdleWait(int? dueInMs)
    {
        var result = new SweepResult(0, TimeSpan.Zero) { NextDue = dueInMs is int ms ? T0.AddMilliseconds(ms) : null };

        Assert.That(LeaseSweeper.WaitAfter(result, TimeSpan.FromMilliseconds(800), T0), Is.EqualTo(TimeSpan.FromMilliseconds(800)),
            "nothing pending, a deadline already past (swept again at the idle wait, never a busy loop) or one after the idle wait");
    }
}
