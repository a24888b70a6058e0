using System.Diagnostics;
using CredBroker.Testing.Grpc;
using CredBroker.Testing.Interop;
using Google.Protobuf;
using Google.Rpc;

namespace CredBroker.Grpc.Tests;

/// <summary>The interop matrix with our own .NET client (the Python and Node clients run the same one in CredBroker.Interop.Tests).</summary>
[TestFixture]
public sealed class ClientMatrixTests : InteropServerFixture
{
    private const string Echo = "/credbroker.testing.v1.Interop/Echo";
    private const string Count = "/credbroker.testing.v1.Interop/Count";
    private GrpcClient Client => new(Http, Server.H2c);

    [Test]
    public async Task Unary_Ok()
    {
        var reply = await Client.UnaryAsync(Echo, new EchoRequest { Message = "hi" }, EchoResponse.Parser);
        Assert.That(reply.Message, Is.EqualTo("hi"));
    }

    [Test]
    public void Unary_Error_CarriesMessageAndDetails()
    {
        var e = Assert.ThrowsAsync<RpcException>(() => Client.UnaryAsync(Echo,
            new EchoRequest { Message = "why", FailCode = 7, FailMessage = "denied — 100% by test" }, EchoResponse.Parser));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(e.Detail, Is.EqualTo("denied — 100% by test"));
        var info = e.GetDetail<ErrorInfo>();
        Assert.That(info, Is.Not.Null);
        Assert.That(info!.Reason, Is.EqualTo("TEST_FAILURE"));
        Assert.That(info.Metadata["echo"], Is.EqualTo("why"));
    }

    [Test]
    public async Task Metadata_RoundTripsAsciiAndBinaryInHeadersAndTrailers()
    {
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var result = await Client.UnaryCallAsync(Echo, new EchoRequest { Message = "m" }, EchoResponse.Parser, new CallOptions
        {
            Metadata = new Metadata { { "x-echo-text", "hello" }, { "x-echo-data-bin", bytes } },
        });

        Assert.That(result.Headers.Single(e => e.Name == "x-echo-text").Value, Is.EqualTo("hello"));
        Assert.That(result.Headers.Single(e => e.Name == "x-echo-data-bin").Bytes, Is.EqualTo(bytes));
        Assert.That(result.Trailers.Single(e => e.Name == "x-trailer-text").Value, Is.EqualTo("hello"));
        Assert.That(result.Trailers.Single(e => e.Name == "x-trailer-data-bin").Bytes, Is.EqualTo(bytes));
    }

    [Test]
    public void Metadata_ErrorTrailersReachTheClient()
    {
        var e = Assert.ThrowsAsync<RpcException>(() => Client.UnaryAsync(Echo, new EchoRequest { FailCode = 9, FailMessage = "x" }, EchoResponse.Parser,
            new CallOptions { Metadata = new Metadata { { "x-echo-k", "v" } } }));
        Assert.That(e!.Trailers.Single(t => t.Name == "x-trailer-k").Value, Is.EqualTo("v"));
    }

    [Test]
    public async Task ServerStreaming_DeliversEveryMessageInOrder()
    {
        var indexes = new List<int>();
        await foreach (var m in Client.ServerStreamingAsync(Count, new CountRequest { Count = 25 }, CountResponse.Parser))
        {
            indexes.Add(m.Index);
        }

        Assert.That(indexes, Is.EqualTo(Enumerable.Range(0, 25)));
    }

    [Test]
    public void ServerStreaming_ErrorMidStream_ArrivesAfterTheMessagesSent()
    {
        var indexes = new List<int>();
        var e = Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var m in Client.ServerStreamingAsync(Count, new CountRequest { Count = 10, FailAfter = 4 }, CountResponse.Parser))
            {
                indexes.Add(m.Index);
            }
        });
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Aborted));
        Assert.That(e.Detail, Is.EqualTo("failed after 4 messages"));
        Assert.That(indexes, Is.EqualTo(new[] { 0, 1, 2, 3 }));
    }

    [Test]
    public async Task ServerStreaming_ClientCancel_ReachesTheHandler()
    {
        var before = await CancelledStreamsAsync();
        using var cts = new CancellationTokenSource();
        var received = 0;
        var e = Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in Client.ServerStreamingAsync(Count, new CountRequest { Count = 1000, DelayMs = 50 }, CountResponse.Parser, cancellationToken: cts.Token))
            {
                if (++received == 3)
                {
                    await cts.CancelAsync();
                }
            }
        });
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Cancelled));

        var deadline = Stopwatch.StartNew();
        while (await CancelledStreamsAsync() == before && deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(50);
        }

        Assert.That(await CancelledStreamsAsync(), Is.GreaterThan(before), "the server handler saw the cancellation");
    }

    [Test]
    public void Deadline_ClientTimeout_IsDeadlineExceededLongBeforeTheHandlerFinishes()
    {
        var watch = Stopwatch.StartNew();
        var e = Assert.ThrowsAsync<RpcException>(() => Client.UnaryAsync(Echo, new EchoRequest { DelayMs = 3000 }, EchoResponse.Parser,
            new CallOptions { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.DeadlineExceeded));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2.5)));
    }

    [Test]
    public void Deadline_ServerCapApplies_WhenTheClientSetsNone()
    {
        var e = Assert.ThrowsAsync<RpcException>(() => Client.UnaryAsync(Echo, new EchoRequest { DelayMs = 6000 }, EchoResponse.Parser));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.DeadlineExceeded));
        Assert.That(e.Detail, Does.Contain("Deadline exceeded"), "the server, not the client, ended the call");
    }

    [Test]
    public async Task Gzip_BothWays()
    {
        var reply = await Client.UnaryAsync(Echo, new EchoRequest { Message = new string('g', 5000), ResponseSize = 20_000 }, EchoResponse.Parser,
            new CallOptions { CompressRequest = true });
        Assert.That(reply.RequestCompressed, Is.True);
        Assert.That(reply.Padding.Length, Is.EqualTo(20_000));
    }

    [Test]
    public void OversizedRequest_IsResourceExhausted()
    {
        var e = Assert.ThrowsAsync<RpcException>(() => Client.UnaryAsync(Echo,
            new EchoRequest { Payload = ByteString.CopyFrom(new byte[100 * 1024]) }, EchoResponse.Parser));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
    }

    [Test]
    public void OversizedResponse_IsRefusedByTheClientLimit()
    {
        var small = new GrpcClient(Http, Server.H2c) { MaxReceiveMessageSize = 1024 };
        var e = Assert.ThrowsAsync<RpcException>(() => small.UnaryAsync(Echo, new EchoRequest { ResponseSize = 4096 }, EchoResponse.Parser));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
    }

    [TestCase("/credbroker.testing.v1.Interop/Nope", "Method is unimplemented")]
    [TestCase("/no.such.Service/X", "Service is unimplemented")]
    public void UnknownMethodOrService_IsUnimplemented(string method, string message)
    {
        var e = Assert.ThrowsAsync<RpcException>(() => Client.UnaryAsync(method, new EchoRequest(), EchoResponse.Parser));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Unimplemented));
        Assert.That(e.Detail, Does.StartWith(message));
    }

    [Test]
    public async Task Tls_WithTheTestCa()
    {
        using var http = GrpcClient.CreateHttpClient(trustedRoot: Server.Certificates.Ca);
        var reply = await new GrpcClient(http, Server.Tls).UnaryAsync(Echo, new EchoRequest { Message = "tls" }, EchoResponse.Parser);
        Assert.That(reply.Message, Is.EqualTo("tls"));
    }

    [Test]
    public void Tls_UntrustedServer_IsUnavailable()
    {
        using var http = GrpcClient.CreateHttpClient();
        var e = Assert.ThrowsAsync<RpcException>(() => new GrpcClient(http, Server.Tls).UnaryAsync(Echo, new EchoRequest(), EchoResponse.Parser));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
    }

    [Test]
    public async Task MutualTls_ClientCertificateIsAcceptedAndVisibleToHandlers()
    {
        using var http = GrpcClient.CreateHttpClient(Server.Certificates.Client, Server.Certificates.Ca);
        var reply = await new GrpcClient(http, Server.MutualTls).UnaryAsync(Echo, new EchoRequest { Message = "mtls" }, EchoResponse.Parser);
        Assert.That(reply.Message, Is.EqualTo("mtls"));
        Assert.That(reply.ClientCertificateSubject, Is.EqualTo("CN=interop-client"));
    }

    [Test]
    public void MutualTls_NoOrForeignClientCertificate_IsRefused()
    {
        using var none = GrpcClient.CreateHttpClient(trustedRoot: Server.Certificates.Ca);
        using var rogue = GrpcClient.CreateHttpClient(Server.Certificates.RogueClient, Server.Certificates.Ca);
        foreach (var http in new[] { none, rogue })
        {
            var e = Assert.ThrowsAsync<RpcException>(() => new GrpcClient(http, Server.MutualTls).UnaryAsync(Echo, new EchoRequest(), EchoResponse.Parser));
            Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
        }
    }

    [Test]
    public async Task Retry_IdempotentCallsRetryUnavailable_OthersFailAtOnce()
    {
        var flaky = new FlakyHandler(failures: 2);
        using var http = new HttpClient(flaky) { DefaultRequestVersion = System.Net.HttpVersion.Version20 };
        var client = new GrpcClient(http, Server.H2c)
        {
            RetryPolicy = new RetryPolicy { MaxAttempts = 4, InitialBackoff = TimeSpan.FromMilliseconds(10), MaxBackoff = TimeSpan.FromMilliseconds(50) },
        };

        var reply = await client.UnaryAsync(Echo, new EchoRequest { Message = "retried" }, EchoResponse.Parser, new CallOptions { Idempotent = true });
        Assert.That(reply.Message, Is.EqualTo("retried"));
        Assert.That(flaky.Attempts, Is.EqualTo(3));

        flaky.Reset(failures: 1);
        var e = Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync(Echo, new EchoRequest(), EchoResponse.Parser));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Unavailable));
        Assert.That(flaky.Attempts, Is.EqualTo(1));
    }

    /// <summary>Fails the first N requests as a connection failure would, then passes requests through.</summary>
    private sealed class FlakyHandler(int failures) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _failures = failures;

        public int Attempts { get; private set; }

        public void Reset(int failures) => (_failures, Attempts) = (failures, 0);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Attempts++;
            return _failures-- > 0
                ? throw new HttpRequestException("connection refused (simulated)")
                : base.SendAsync(request, cancellationToken);
        }
    }

    private async Task<int> CancelledStreamsAsync() =>
        (await Client.UnaryAsync("/credbroker.testing.v1.Interop/Stats", new StatsRequest(), StatsResponse.Parser)).CancelledStreams;
}
