using System.Security.Cryptography.X509Certificates;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Testing;
using CredBroker.Testing.Grpc;

namespace CredBroker.Redis.Tests;

/// <summary>A real redis-server with TLS only (private CA) and requirepass: the password file and CA settings the Helm chart renders.</summary>
[TestFixture]
[NonParallelizable]
public sealed class RedisConnectionSecurityTests
{
    private const string Password = "s3cret,with=separators";
    private TestCertificates _certificates = null!;
    private RedisServer _redis = null!;
    private int _tlsPort;

    [OneTimeSetUp]
    public void StartTlsRedis()
    {
        _certificates = TestCertificates.Create();
        _tlsPort = RedisServer.FreePort();
        // The plain port stays on loopback for the readiness PING only; every store call below uses the TLS port.
        _redis = RedisServer.Start(appendOnly: false, RedisServer.FreePort(),
            $"--tls-port {_tlsPort} --tls-cert-file {_certificates.ServerCertFile} --tls-key-file {_certificates.ServerKeyFile} "
            + $"--tls-ca-cert-file {_certificates.CaFile} --tls-auth-clients no --requirepass \"{Password}\"");
    }

    [OneTimeTearDown]
    public void Stop()
    {
        _redis.Dispose();
        _certificates.Dispose();
    }

    private string TlsConfiguration => $"127.0.0.1:{_tlsPort},ssl=true,sslHost=localhost,connectTimeout=2000";

    private X509Certificate2Collection TrustedCa()
    {
        var cas = new X509Certificate2Collection();
        cas.ImportFromPemFile(_certificates.CaFile);
        return cas;
    }

    [Test]
    public async Task PrivateCaAndPasswordOutsideTheConnectionString_StoreWorksOverTls()
    {
        using var store = RedisLeaseStore.Connect(TlsConfiguration, connection: new RedisConnectionOptions { Password = Password, TrustedCas = TrustedCa() });

        var lease = NewLease();
        var opened = await WhenConnected(() => store.OpenAsync(lease, LeaseQuota.Unlimited, default));

        Assert.That(opened.Created, Is.True);
        Assert.That((await store.GetAsync(lease.LeaseId, default))?.State, Is.EqualTo(LeaseState.Active));
    }

    [Test]
    public void CertificateFromAnUntrustedCa_FailsClosed()
    {
        using var store = RedisLeaseStore.Connect(TlsConfiguration, connection: new RedisConnectionOptions { Password = Password });

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetAsync(LeaseIds.For("agent-a", "t1"), default));
    }

    [Test]
    public void WrongPassword_FailsClosed()
    {
        using var store = RedisLeaseStore.Connect(TlsConfiguration, connection: new RedisConnectionOptions { Password = "wrong", TrustedCas = TrustedCa() });

        Assert.ThrowsAsync<StoreUnavailableException>(() => store.GetAsync(LeaseIds.For("agent-a", "t1"), default));
    }

    [Test]
    public void CaWithoutTlsInTheConfiguration_IsRefusedAtConnect()
    {
        var e = Assert.Throws<ArgumentException>(() => RedisLeaseStore.Connect($"127.0.0.1:{_tlsPort}", connection: new RedisConnectionOptions { TrustedCas = TrustedCa() }));

        Assert.That(e!.Message, Does.Contain("ssl=true"));
    }

    private static Lease NewLease()
    {
        var now = DateTimeOffset.UtcNow;
        var task = "task-" + Guid.NewGuid().ToString("N");
        return new Lease
        {
            LeaseId = LeaseIds.For("agent-a", task), AgentId = "agent-a", TaskId = task, Owner = "owner@example.com", Purpose = "tls test",
            Audience = "api", Scopes = ["read"], CreatedAt = now, Deadline = now.AddMinutes(5), MaxDeadline = now.AddMinutes(10),
            State = LeaseState.Active,
        };
    }

    /// <summary>The multiplexer connects in the background (AbortOnConnectFail=false): retry until the TLS handshake is done, within a deadline.</summary>
    private static async Task<T> WhenConnected<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (StoreUnavailableException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }
}
