using System.Net.Sockets;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Grpc.Core;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, item 13 (c): one identity cannot hold unbounded server streams (RESOURCE_EXHAUSTED past
/// CredBroker:Listen:Grpc:MaxStreamsPerIdentity), and one source address cannot hold unbounded
/// connections to a gRPC listener (closed past MaxConnectionsPerAddress).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityStreamAndConnectionLimitTests
{
    private const string Triage = "system:serviceaccount:support:triage";
    private const string Tickets = "system:serviceaccount:apis:tickets";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private RedisServer _redis = null!;

    [SetUp]
    public void StartRedis() => _redis = RedisServer.Start();

    [TearDown]
    public void StopRedis() => _redis.Dispose();

    /// <summary>Opens a WatchRevocations stream and waits for its first message (the caught-up heartbeat): the stream is then being served.</summary>
    private static async Task<IAsyncEnumerator<RevocationEvent>> OpenAsync(CredBrokerClient client, CancellationToken cancellationToken)
    {
        var stream = client.WatchRevocationsAsync(fromNow: true, cancellationToken: cancellationToken).GetAsyncEnumerator(cancellationToken);
        Assert.That(await stream.MoveNextAsync(), Is.True);
        return stream;
    }

    [Test]
    public async Task StreamsPastThePerIdentityLimit_AreResourceExhausted_OtherIdentitiesAreNotAffected()
    {
        await using var broker = new ProductionBroker();
        await broker.StartAsync(_redis.ConnectionString, "--CredBroker:Listen:Grpc:MaxStreamsPerIdentity=2");
        using var triage = broker.ClientFor(Triage);
        using var tickets = broker.ClientFor(Tickets);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var firstCts = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);

        var first = await OpenAsync(triage, firstCts.Token);
        await using var second = await OpenAsync(triage, cts.Token);
        var third = triage.WatchRevocationsAsync(fromNow: true, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        var refused = Assert.ThrowsAsync<RpcException>(async () => await third.MoveNextAsync());
        await using var other = await OpenAsync(tickets, cts.Token);

        Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
        Assert.That(refused.Detail, Does.Contain("MaxStreamsPerIdentity").And.Contain(Triage));
        Assert.That(refused.ErrorInfo?.Reason, Is.EqualTo("STREAM_LIMIT"));

        // Closing a stream frees its slot.
        await firstCts.CancelAsync();
        try
        {
            await first.DisposeAsync();
        }
        catch (RpcException)
        {
            // The cancelled stream ends with CANCELLED.
        }

        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var again = await OpenAsync(triage, cts.Token);
                break;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted && waited.Elapsed < Patience)
            {
                await Task.Delay(100);
            }
        }
    }

    [Test]
    public async Task OperatorStreams_CountPerOperatorToo()
    {
        await using var broker = new ProductionBroker();
        await broker.StartAsync(_redis.ConnectionString, "--CredBroker:Listen:Grpc:MaxStreamsPerIdentity=1");
        using var operators = broker.OperatorClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var agent = broker.ClientFor(Triage);
        await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = "t-" + Guid.NewGuid().ToString("N"), Scopes = { "tickets:read" } });

        await using var follow = operators.QueryAuditAsync(new QueryAuditRequest { Follow = true }, cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.That(await follow.MoveNextAsync(), Is.True);
        var refused = Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in operators.QueryAuditAsync(new QueryAuditRequest { Tail = 1 }, cts.Token))
            {
            }
        });

        Assert.That(refused!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
    }

    [Test]
    public async Task ConnectionsPastThePerAddressLimit_AreClosed_AndASlotFreesWhenOneCloses()
    {
        await using var broker = new ProductionBroker();
        await broker.StartAsync(_redis.ConnectionString, "--CredBroker:Listen:Grpc:MaxConnectionsPerAddress=3");
        var held = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                held.Add(await OpenHttp2Async(broker.AgentPort));
            }

            // A fourth connection from the same address: closed before HTTP/2, so the call fails at the transport.
            using (var client = broker.ClientFor(Triage))
            {
                var error = await Refused.CallAsync(() => client.GetSigningKeysAsync());
                Assert.That(error.StatusCode, Is.EqualTo(StatusCode.Unavailable).Or.EqualTo(StatusCode.Internal), error.Message);
                Assert.That(error.Status.DebugException, Is.InstanceOf<HttpRequestException>().Or.InstanceOf<SocketException>().Or.InstanceOf<IOException>(),
                    "the connection was closed below gRPC: " + error.Message);
            }

            held[0].Dispose();
            held.RemoveAt(0);
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (true)
            {
                using var client = broker.ClientFor(Triage);
                try
                {
                    Assert.That((await client.GetSigningKeysAsync()).Keys, Is.Not.Empty);
                    break;
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.Internal && waited.Elapsed < Patience)
                {
                    await Task.Delay(100);
                }
            }
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }
    }

    /// <summary>A raw connection that completed the HTTP/2 preface (the server's SETTINGS came back): it holds a slot.</summary>
    private static async Task<TcpClient> OpenHttp2Async(int port)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        var stream = tcp.GetStream();
        byte[] preface = [.. "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8, 0, 0, 0, 4, 0, 0, 0, 0, 0];
        await stream.WriteAsync(preface);
        var header = new byte[9];
        using var timeout = new CancellationTokenSource(Patience);
        await stream.ReadExactlyAsync(header, timeout.Token);
        Assert.That(header[3], Is.EqualTo(4), "the server answered with its SETTINGS frame");
        return tcp;
    }
}
