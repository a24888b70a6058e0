using System.Diagnostics;
using System.IO.Compression;
using CredBroker.Testing.Grpc;
using CredBroker.Testing.Interop;
using Google.Protobuf;

namespace CredBroker.Grpc.Tests;

/// <summary>PROTOCOL-HTTP2 and compression.md behaviour checked on the wire, with requests built byte by byte.</summary>
[TestFixture]
public sealed class ProtocolConformanceTests : InteropServerFixture
{
    private const string Echo = "/credbroker.testing.v1.Interop/Echo";

    [Test]
    public async Task NonPost_Is405WithAllow()
    {
        var response = await Send(new RawCall(Echo, []) { Method = "GET" });
        Assert.That(response.HttpStatus, Is.EqualTo(405));
        Assert.That(response.Headers["allow"], Is.EqualTo("POST"));
    }

    [TestCase("text/plain")]
    [TestCase("application/grpc+json")]
    [TestCase("application/grpcx")]
    public async Task WrongContentType_Is415(string contentType)
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest())) { ContentType = contentType });
        Assert.That(response.HttpStatus, Is.EqualTo(415));
    }

    [TestCase("application/grpc+proto")]
    [TestCase("application/grpc; charset=utf-8")]
    public async Task GrpcContentTypeVariants_AreAccepted(string contentType)
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest { Message = "x" })) { ContentType = contentType });
        Assert.That(response.Status, Is.EqualTo(StatusCode.OK));
    }

    [Test]
    public async Task EarlyError_IsTrailersOnly()
    {
        var response = await Send(new RawCall("/credbroker.testing.v1.Interop/Nope", RawCall.Frame(new EchoRequest())));
        Assert.That(response.HttpStatus, Is.EqualTo(200));
        Assert.That(response.Headers["content-type"], Is.EqualTo("application/grpc"));
        Assert.That(response.TrailersOnly, Is.True);
        Assert.That(response.Status, Is.EqualTo(StatusCode.Unimplemented));
    }

    [Test]
    public async Task ErrorDetails_TravelAsGoogleRpcStatus()
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest { FailCode = 5, FailMessage = "gone" })));
        var status = Google.Rpc.Status.Parser.ParseFrom(Convert.FromBase64String(Pad(response.Headers["grpc-status-details-bin"])));
        Assert.That(status.Code, Is.EqualTo(5));
        Assert.That(status.Message, Is.EqualTo("gone"));
        Assert.That(status.Details.Single().Unpack<Google.Rpc.ErrorInfo>().Reason, Is.EqualTo("TEST_FAILURE"));
    }

    [Test]
    public async Task UnknownEncoding_IsUnimplementedAndListsTheSupportedOnes()
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest(), flag: 1))
        {
            Headers = new Dictionary<string, string> { ["grpc-encoding"] = "br" },
        });
        Assert.That(response.Status, Is.EqualTo(StatusCode.Unimplemented));
        Assert.That(response.Headers["grpc-accept-encoding"], Does.Contain("gzip"));
        Assert.That(response.Message, Does.Contain("gzip"));
    }

    [Test]
    public async Task CompressedFlagWithoutEncoding_IsInternal()
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest { Message = "x" }, flag: 1)));
        Assert.That(response.Status, Is.EqualTo(StatusCode.Internal));
    }

    [Test]
    public async Task GzipRequest_GetsAGzipResponse_WhenTheClientAcceptsIt()
    {
        var payload = Gzip(new EchoRequest { Message = "compressed" }.ToByteArray());
        var response = await Send(new RawCall(Echo, RawCall.Frame(payload, flag: 1))
        {
            Headers = new Dictionary<string, string> { ["grpc-encoding"] = "gzip", ["grpc-accept-encoding"] = "identity,gzip" },
        });

        Assert.That(response.Status, Is.EqualTo(StatusCode.OK));
        Assert.That(response.Headers["grpc-encoding"], Is.EqualTo("gzip"));
        Assert.That(response.Body[0], Is.EqualTo(1), "the response frame is flagged compressed");
        var reply = EchoResponse.Parser.ParseFrom(Gunzip(response.Body[5..]));
        Assert.That(reply.Message, Is.EqualTo("compressed"));
        Assert.That(reply.RequestCompressed, Is.True);
    }

    [Test]
    public async Task GzipRequest_GetsAPlainResponse_WhenTheClientDoesNotAcceptGzip()
    {
        var payload = Gzip(new EchoRequest { Message = "compressed" }.ToByteArray());
        var response = await Send(new RawCall(Echo, RawCall.Frame(payload, flag: 1))
        {
            Headers = new Dictionary<string, string> { ["grpc-encoding"] = "gzip", ["grpc-accept-encoding"] = "identity" },
        });

        Assert.That(response.Status, Is.EqualTo(StatusCode.OK));
        Assert.That(response.Headers.ContainsKey("grpc-encoding"), Is.False);
        Assert.That(response.Body[0], Is.EqualTo(0));
    }

    [Test]
    public async Task GzipBomb_IsResourceExhausted()
    {
        var bomb = Gzip(new EchoRequest { Payload = ByteString.CopyFrom(new byte[10 * 1024 * 1024]) }.ToByteArray());
        Assert.That(bomb.Length, Is.LessThan(64 * 1024), "the compressed frame itself is under the limit");
        var response = await Send(new RawCall(Echo, RawCall.Frame(bomb, flag: 1))
        {
            Headers = new Dictionary<string, string> { ["grpc-encoding"] = "gzip" },
        });
        Assert.That(response.Status, Is.EqualTo(StatusCode.ResourceExhausted));
    }

    [TestCase(new byte[] { 2, 0, 0, 0, 0 }, Description = "invalid compressed-flag byte")]
    [TestCase(new byte[] { 0, 0, 0, 0, 100, 1, 2, 3 }, Description = "frame declares 100 bytes, 3 arrive")]
    [TestCase(new byte[] { 0, 0, 0 }, Description = "truncated frame header")]
    [TestCase(new byte[] { }, Description = "no message at all")]
    [TestCase(new byte[] { 0, 0, 0, 0, 3, 0xFF, 0xFF, 0xFF }, Description = "bytes that are not protobuf")]
    [TestCase(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, Description = "two messages for a unary method")]
    public async Task MalformedBody_IsInternal(byte[] body)
    {
        var response = await Send(new RawCall(Echo, body));
        Assert.That(response.Status, Is.EqualTo(StatusCode.Internal), response.Message);
    }

    [Test]
    public async Task DeclaredLengthOverTheLimit_IsResourceExhaustedWithoutReadingTheBody()
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame([1, 2, 3], declaredLength: int.MaxValue)));
        Assert.That(response.Status, Is.EqualTo(StatusCode.ResourceExhausted));
    }

    [TestCase("1x")]
    [TestCase("123456789S")]
    [TestCase("soon")]
    public async Task MalformedTimeout_FallsBackToTheServerDeadline(string timeout)
    {
        var watch = Stopwatch.StartNew();
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest { DelayMs = 10_000 }))
        {
            Headers = new Dictionary<string, string> { ["grpc-timeout"] = timeout },
        });
        Assert.That(response.Status, Is.EqualTo(StatusCode.DeadlineExceeded));
        Assert.That(watch.Elapsed, Is.LessThan(InteropServer.MaxUnaryDeadline + TimeSpan.FromSeconds(2)));
    }

    [Test]
    public async Task ClientTimeoutLongerThanTheServerMaximum_IsCapped()
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest { DelayMs = 10_000 }))
        {
            Headers = new Dictionary<string, string> { ["grpc-timeout"] = "1H" },
        });
        Assert.That(response.Status, Is.EqualTo(StatusCode.DeadlineExceeded));
    }

    [Test]
    public async Task PaddedAndUnpaddedBinaryMetadata_AreBothAccepted()
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest()))
        {
            Headers = new Dictionary<string, string> { ["x-echo-a-bin"] = "AQI=", ["x-echo-b-bin"] = "AQI" },
        });
        Assert.That(response.Status, Is.EqualTo(StatusCode.OK));
        Assert.That(Convert.FromBase64String(Pad(response.Headers["x-echo-a-bin"])), Is.EqualTo(new byte[] { 1, 2 }));
        Assert.That(Convert.FromBase64String(Pad(response.Headers["x-echo-b-bin"])), Is.EqualTo(new byte[] { 1, 2 }));
    }

    [Test]
    public async Task SuccessfulResponse_AdvertisesAcceptedEncodings()
    {
        var response = await Send(new RawCall(Echo, RawCall.Frame(new EchoRequest())));
        Assert.That(response.Headers["grpc-accept-encoding"], Is.EqualTo("identity,gzip"));
        Assert.That(response.Trailers["grpc-status"], Is.EqualTo("0"));
    }

    private Task<RawResponse> Send(RawCall call) => call.SendAsync(Http, Server.H2c);

    private static string Pad(string base64) => base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    private static byte[] Gunzip(byte[] data)
    {
        using var gzip = new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
        using var output = new MemoryStream();
        gzip.CopyTo(output);
        return output.ToArray();
    }
}
