using CredBroker.Core.Leases;
using CredBroker.Testing;

namespace CredBroker.Redis.Tests;

/// <summary>
/// The whole store contract against a local 3-master Redis Cluster: any script that touched keys
/// of two hash slots would fail here with CROSSSLOT.
/// </summary>
[TestFixture("resp2")]
[TestFixture("resp3")]
[NonParallelizable]
public sealed class RedisClusterLeaseStoreContractTests(string protocol) : LeaseStoreContract
{
    private RedisCluster _cluster = null!;
    private RedisLeaseStore _store = null!;

    protected override ILeaseStore Store => _store;

    private string Configuration => _cluster.ConnectionString + ",protocol=" + protocol;

    protected override ILeaseStore CreateStore(LeaseStoreOptions options) => RedisLeaseStore.Connect(Configuration, options);

    [OneTimeSetUp]
    public void StartCluster()
    {
        _cluster = RedisCluster.Start();
        _store = RedisLeaseStore.Connect(Configuration);
    }

    [OneTimeTearDown]
    public void StopCluster()
    {
        _store.Dispose();
        _cluster.Dispose();
    }

    [Test]
    public void TheClusterSpreadsTheShardsOverSeveralMasters()
    {
        // Sanity check of the fixture itself: 16 shard tags land on more than one node.
        Assert.That(_cluster.Nodes, Has.Count.EqualTo(3));
        var slots = Enumerable.Range(0, LeaseIds.ShardCount).Select(s => SlotOf("s" + s.ToString("x2", System.Globalization.CultureInfo.InvariantCulture))).ToList();
        Assert.That(slots.Select(s => s * 3 / 16384).Distinct().Count(), Is.GreaterThan(1));
    }

    /// <summary>CRC16/XMODEM of the hash tag mod 16384, as Redis Cluster assigns keys to slots.</summary>
    private static int SlotOf(string tag)
    {
        ushort crc = 0;
        foreach (var b in System.Text.Encoding.ASCII.GetBytes(tag))
        {
            crc ^= (ushort)(b << 8);
            for (var i = 0; i < 8; i++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }
        }

        return crc % 16384;
    }
}
