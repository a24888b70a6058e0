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
}
