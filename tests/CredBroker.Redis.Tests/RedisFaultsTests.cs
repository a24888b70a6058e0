using StackExchange.Redis;

namespace CredBroker.Redis.Tests;

/// <summary>Which Redis errors are "unavailable" (fail closed, retry) and which are bugs (they must not be retried away).</summary>
[TestFixture]
public sealed class RedisFaultsTests
{
    [TestCase("TRYAGAIN Multiple keys request during rehashing of slot")]
    [TestCase("TRYAGAIN slot in migration (Script attempted to access a non local key in a cluster node script: abc, on @user_script:1.)")]
    [TestCase("MOVED 1234 127.0.0.1:7001")]
    [TestCase("ASK 1234 127.0.0.1:7001")]
    [TestCase("CLUSTERDOWN The cluster is down")]
    [TestCase("Key has MOVED to Endpoint 127.0.0.1:7001 and hashslot 1234 but CommandFlags.NoRedirect was specified - redirect not followed for EVALSHA. ")]
    [TestCase("Key has MOVED but CommandFlags.NoRedirect was specified - redirect not followed. ")]
    [TestCase("ERR Script attempted to access a non local key in a cluster node script: 7c2a, on @user_script:40.")]
    [TestCase("ERR Script attempted to execute a command while the cluster is down")]
    [TestCase("ERR WAIT cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.")]
    public void ClusterInMotion_IsUnavailable(string message)
    {
        Assert.That(RedisFaults.IsUnavailable(new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, message)), Is.True, message);
    }

    [TestCase("WRONGTYPE Operation against a key holding the wrong kind of value")]
    [TestCase("ERR Error running script (call to f_x): @user_script:3: user_script:3: attempt to compare nil with number")]
    [TestCase("NOSCRIPT No matching script")]
    public void Bugs_AreNotUnavailable(string message)
    {
        Assert.That(RedisFaults.IsUnavailable(new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, message)), Is.False, message);
    }

    [Test]
    public void Describe_NamesADeclinedRedirect()
    {
        Assert.That(RedisFaults.Describe(new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, "Key has MOVED but CommandFlags.NoRedirect was specified - redirect not followed. ")),
            Is.EqualTo("MOVED (redirect not followed)"));
        Assert.That(RedisFaults.Describe(new RedisServerException(RedisErrorKind.Unknown, CommandFlags.None, "TRYAGAIN slot in migration")), Is.EqualTo("TRYAGAIN"));
    }
}
