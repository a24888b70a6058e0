using System.Diagnostics;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CredBroker.Testing.Grpc;
using CredBroker.Testing.Interop;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using InteropClient = CredBroker.Testing.Interop.Interop.InteropClient;

namespace CredBroker.Interop.Tests;

/// <summary>
/// The interop matrix with the .NET client agent runtimes use (Grpc.Net.Client) against
/// <see cref="InteropServer"/>; Python grpcio and Node grpc-js run the same cases in <see cref="InteropMatrixTests"/>.
/// </summary>
[TestFixture]
public sealed class DotnetClientMatrixTests
{
    private InteropServer _server = null!;
    private GrpcChannel _channel = null!;

    private InteropClient Client => new(_channel);

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _server = await InteropServer.StartAsync();
        _channel = GrpcChannel.ForAddress(_server.H2c);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Test]
    public async Task Unary_Ok()
    {
        var reply = await Client.EchoAsync(new EchoRequest { Message = "hi" });
        Assert.That(reply.Message, Is.EqualTo("hi"));
    }

    [Test]
    public void Unary_Error_CarriesMessageAndDetails()
    {
        var e = Assert.ThrowsAsync<RpcException>(async () => await Client.EchoAsync(new EchoRequest { Message = "why", FailCode = 7, FailMessage = "denied — 100% by test" }));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
        Assert.That(e.Status.Detail, Is.EqualTo("denied — 100% by test"));
        var info = e.GetRpcStatus()?.GetDetail<ErrorInfo>();
        Assert.That(info, Is.Not.Null);
        Assert.That(info!.Reason, Is.EqualTo("TEST_FAILURE"));
        Assert.That(info.Metadata["echo"], Is.EqualTo("why"));
    }

    [Test]
    public async Task Metadata_RoundTripsAsciiAndBinaryInHeadersAndTrailers()
    {
        var bytes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        using var call = Client.EchoAsync(new EchoRequest { Message = "m" }, new Metadata { { "x-echo-text", "hello" }, { "x-echo-data-bin", bytes } });
        var headers = await call.ResponseHeadersAsync;
        await call;
        var trailers = call.GetTrailers();

        Assert.That(headers.GetValue("x-echo-text"), Is.EqualTo("hello"));
        Assert.That(headers.GetValueBytes("x-echo-data-bin"), Is.EqualTo(bytes));
        Assert.That(trailers.GetValue("x-trailer-text"), Is.EqualTo("hello"));
        Assert.That(trailers.GetValueBytes("x-trailer-data-bin"), Is.EqualTo(bytes));
    }

    [Test]
    public void Metadata_ErrorTrailersReachTheClient()
    {
        var e = Assert.ThrowsAsync<RpcException>(async () => await Client.EchoAsync(new EchoRequest { FailCode = 9, FailMessage = "x" }, new Metadata { { "x-echo-k", "v" } }));
        Assert.That(e!.Trailers.GetValue("x-trailer-k"), Is.EqualTo("v"));
    }

    [Test]
    public async Task ServerStreaming_DeliversEveryMessageInOrder()
    {
        using var call = Client.Count(new CountRequest { Count = 25 });
        var indexes = new List<int>();
        await foreach (var m in call.ResponseStream.ReadAllAsync())
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
            using var call = Client.Count(new CountRequest { Count = 10, FailAfter = 4 });
            await foreach (var m in call.ResponseStream.ReadAllAsync())
            {
                indexes.Add(m.Index);
            }
        });
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Aborted));
        Assert.That(e.Status.Detail, Is.EqualTo("failed after 4 messages"));
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
            using var call = Client.Count(new CountRequest { Count = 1000, DelayMs = 50 }, cancellationToken: cts.Token);
            await foreach (var _ in call.ResponseStream.ReadAllAsync(cts.Token))
            {
                if (++received == 3)
                {
                    await cts.CancelAsync();
                }
            }
        });
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Cancelled));

        var waited = Stopwatch.StartNew();
        while (await CancelledStreamsAsync() == before && waited.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(50);
        }

        Assert.That(await CancelledStreamsAsync(), Is.GreaterThan(before), "the server handler saw the cancellation");
    }

    [Test]
    public void Deadline_ClientTimeout_IsDeadlineExceeded()
    {
        var e = Assert.ThrowsAsync<RpcException>(async () => await Client.EchoAsync(new EchoRequest { DelayMs = 30_000 }, deadline: DateTime.UtcNow.AddMilliseconds(300)));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.DeadlineExceeded));
    }

    [Test]
    public void Deadline_ServerCapApplies_WhenTheClientSetsNone()
    {
        // The client sets no deadline; only the server's cap (InteropServer.MaxUnaryDeadline) can end the call.
        var e = Assert.ThrowsAsync<RpcException>(async () => await Client.EchoAsync(new EchoRequest { DelayMs = 60_000 }));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.DeadlineExceeded));
    }

    [Test]
    public async Task Gzip_BothWays()
    {
        using var channel = GrpcChannel.ForAddress(_server.H2c);
        var client = new InteropClient(channel);
        var reply = await client.EchoAsync(new EchoRequest { Message = new string('g', 5000), ResponseSize = 20_000 },
            new Metadata { { "grpc-internal-encoding-request", "gzip" } });
        Assert.That(reply.RequestCompressed, Is.True);
        Assert.That(reply.Padding.Length, Is.EqualTo(20_000));
    }

    [Test]
    public void OversizedRequest_IsResourceExhausted()
    {
        var e = Assert.ThrowsAsync<RpcException>(async () => await Client.EchoAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[100 * 1024]) }));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
    }

    [Test]
    public void OversizedResponse_IsRefusedByTheClientLimit()
    {
        using var small = GrpcChannel.ForAddress(_server.H2c, new GrpcChannelOptions { MaxReceiveMessageSize = 1024 });
        var e = Assert.ThrowsAsync<RpcException>(async () => await new InteropClient(small).EchoAsync(new EchoRequest { ResponseSize = 4096 }));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
    }

    [TestCase("Nope")]
    [TestCase("/no.such.Service/X")]
    public void UnknownMethodOrService_IsUnimplemented(string name)
    {
        var method = name.StartsWith('/')
            ? new Method<EchoRequest, EchoResponse>(MethodType.Unary, "no.such.Service", "X", Marshaller(EchoRequest.Parser), Marshaller(EchoResponse.Parser))
            : new Method<EchoRequest, EchoResponse>(MethodType.Unary, InteropServer.Service, name, Marshaller(EchoRequest.Parser), Marshaller(EchoResponse.Parser));
        var e = Assert.ThrowsAsync<RpcException>(async () => await _channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(), new EchoRequest()));
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Unimplemented));
    }

    [Test]
    public async Task Tls_WithTheTestCa()
    {
        using var channel = TlsChannel(_server.Tls, clientCertificate: null);
        var reply = await new InteropClient(channel).EchoAsync(new EchoRequest { Message = "tls" });
        Assert.That(reply.Message, Is.EqualTo("tls"));
    }

    [Test]
    public void Tls_UntrustedServer_IsATransportFailure()
    {
        using var channel = GrpcChannel.ForAddress(_server.Tls);
        var e = Assert.ThrowsAsync<RpcException>(async () => await new InteropClient(channel).EchoAsync(new EchoRequest()));
        AssertTransportFailure(e);
    }

    [Test]
    public async Task MutualTls_ClientCertificateIsAcceptedAndVisibleToHandlers()
    {
        using var channel = TlsChannel(_server.MutualTls, _server.Certificates.Client);
        var reply = await new InteropClient(channel).EchoAsync(new EchoRequest { Message = "mtls" });
        Assert.That(reply.Message, Is.EqualTo("mtls"));
        Assert.That(reply.ClientCertificateSubject, Is.EqualTo("CN=interop-client"));
    }

    [Test]
    public void MutualTls_NoOrForeignClientCertificate_IsRefused()
    {
        foreach (var certificate in new[] { null, _server.Certificates.RogueClient })
        {
            using var channel = TlsChannel(_server.MutualTls, certificate);
            var e = Assert.ThrowsAsync<RpcException>(async () => await new InteropClient(channel).EchoAsync(new EchoRequest()));
            AssertTransportFailure(e);
        }
    }

    /// <summary>
    /// A connection that never became an HTTP/2 session: Grpc.Net.Client reports UNAVAILABLE, or
    /// INTERNAL when the server closed before the HTTP/2 handshake, with the transport's exception.
    /// </summary>
    private static void AssertTransportFailure(RpcException? e)
    {
        Assert.That(e!.StatusCode, Is.EqualTo(StatusCode.Unavailable).Or.EqualTo(StatusCode.Internal), e.Message);
        Assert.That(e.Status.DebugException, Is.InstanceOf<HttpRequestException>(), e.Message);
    }

    [Test]
    public async Task Retry_ServiceConfigRetriesUnavailable()
    {
        // A server that answers UNAVAILABLE twice, then passes calls through.
        var flaky = new FlakyHandler(failures: 2);
        var retry = new MethodConfig
        {
            Names = { MethodName.Default },
            RetryPolicy = new RetryPolicy
            {
                MaxAttempts = 4,
                InitialBackoff = TimeSpan.FromMilliseconds(10),
                MaxBackoff = TimeSpan.FromMilliseconds(50),
                BackoffMultiplier = 2,
                RetryableStatusCodes = { StatusCode.Unavailable },
            },
        };
        using var channel = GrpcChannel.ForAddress(_server.H2c, new GrpcChannelOptions
        {
            HttpHandler = flaky,
            ServiceConfig = new ServiceConfig { MethodConfigs = { retry } },
        });
        var reply = await new InteropClient(channel).EchoAsync(new EchoRequest { Message = "retried" });
        Assert.That(reply.Message, Is.EqualTo("retried"));
        Assert.That(flaky.Attempts, Is.EqualTo(3));
    }

    private GrpcChannel TlsChannel(Uri address, X509Certificate2? clientCertificate)
    {
        var ca = _server.Certificates.Ca;
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });
    }

    private static Marshaller<T> Marshaller<T>(MessageParser<T> parser)
        where T : IMessage<T> => Marshallers.Create(m => m.ToByteArray(), parser.ParseFrom);

    private async Task<int> CancelledStreamsAsync() => (await Client.StatsAsync(new StatsRequest())).CancelledStreams;

    /// <summary>Answers the first N calls with a trailers-only UNAVAILABLE, as an overloaded server would, then passes calls through.</summary>
    private sealed class FlakyHandler(int failures) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _failures = failures;

        public int Attempts { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Attempts++;
            if (_failures-- <= 0)
            {
                return base.SendAsync(request, cancellationToken);
            }

            var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Version = System.Net.HttpVersion.Version20, RequestMessage = request, Content = new ByteArrayContent([]) };
            response.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
            response.Headers.Add("grpc-status", ((int)StatusCode.Unavailable).ToString(System.Globalization.CultureInfo.InvariantCulture));
            response.Headers.Add("grpc-message", "overloaded (simulated)");
            return Task.FromResult(response);
        }
    }
}
