using CredBroker.Core.Leases;
using CredBroker.Core.Leases.InMemory;
using CredBroker.Testing;

namespace CredBroker.Core.Tests;

[TestFixture]
public sealed class InMemoryLeaseStoreContractTests : LeaseStoreContract
{
    private InMemoryLeaseStore _store = null!;

    protected override ILeaseStore Store => _store;

    [SetUp]
    public void CreateStore() => _store = new InMemoryLeaseStore();

    protected override ILeaseStore CreateStore(LeaseStoreOptions options) => new InMemoryLeaseStore(options);

    /// <summary>Redis expires lease keys on its own clock; the in-memory store purges on the sweeper's.</summary>
    [Test]
    public async Task Sweep_DropsLeasesPastTheirRetention_AndKeepsTheRest()
    {
        var ended = NewLease("agent-old");
        var recent = NewLease("agent-new", at: Now.AddHours(2));
        await Open(ended);
        await Open(recent);
        await Complete(ended.LeaseId, Now.AddMinutes(1));

        await ClaimAll(LeaseStoreOptions.RetainedUntil(ended).AddMilliseconds(1));

        Assert.That(await Store.GetAsync(ended.LeaseId, default), Is.Null);
        Assert.That(await Store.FindByTaskAsync("agent-old", ended.TaskId, default), Is.Null);
        Assert.That(await Store.GetAsync(recent.LeaseId, default), Is.Not.Null);
    }
}
