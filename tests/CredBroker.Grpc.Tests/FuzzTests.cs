using System.Diagnostics;
using CredBroker.Testing.Grpc;
using CredBroker.Testing.Interop;
using Google.Protobuf;
using Grpc.Health.V1;

namespace CredBroker.Grpc.Tests;

/// <summary>
/// Thousands of random, truncated and malformed requests (seeded, bounded in count and time):
/// each must end with a gRPC status or the spec's HTTP answer, and the server must stay healthy.
/// </summary>
[TestFixture]
public sealed class FuzzTests
{
    private const int Iterations = 3000;
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(60);

    private static readonly string[] Paths =
    [
        "/credbroker.testing.v1.Interop/Echo", "/credbroker.testing.v1.Interop/Count", "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/credbroker.testing.v1.Interop/", "/", "/x/y/z", "//", "/%00/%ff",
    ];

    private static readonly string[] ContentTypes = ["application/grpc", "application/grpc+proto", "application/grpc+json", "text/plain", "application/grpc;x=y"];

    private static readonly string[] HeaderNames = ["grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "x-thing-bin", "x-thing", "authorization"];

    private static readonly string[] HeaderValues = ["1S", "99999999n", "0m", "-5S", "gzip", "identity", "deflate", "br,gzip", "!!!", "AAAA", "=", new string('a', 4000), ""];

    [Test]
    public async Task RandomRequests_AllAnswerWithAStatus_AndTheServerStaysHealthy()
    {
        await using var server = await InteropServer.StartAsync();
        using var http = GrpcClient.CreateHttpClient();
        var random = new Random(20261125);
        var watch = Stopwatch.StartNew();
        var outcomes = new Dictionary<string, int>();
        var sent = 0;
        for (; sent < Iterations && watch.Elapsed < Budget; sent++)
        {
            var call = RandomCall(random);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            RawResponse response;
            try
            {
                response = await call.SendAsync(http, server.H2c, timeout.Token);
            }
            catch (HttpRequestException e) when (call.Path.Contains("%00", StringComparison.Ordinal) && e.HttpRequestError == HttpRequestError.HttpProtocolError)
            {
                // Kestrel refuses a NUL in the path at the HTTP/2 level, before any gRPC code runs.
                outcomes["http2-reset"] = outcomes.GetValueOrDefault("http2-reset") + 1;
                continue;
            }
            catch (HttpRequestException e)
            {
                Assert.Fail($"request {sent} ({call.Method} {call.Path}, {call.ContentType}, [{string.Join(", ", call.Headers.Select(h => h.Key + "=" + h.Value[..Math.Min(20, h.Value.Length)]))}], {Convert.ToHexString(call.Body[..Math.Min(16, call.Body.Length)])}) broke: {e.Message}");
                throw;
            }

            var outcome = response.Status is { } status ? "grpc:" + status : "http:" + response.HttpStatus;
            Assert.That(response.Status is not null || response.HttpStatus is 405 or 415, Is.True,
                $"request {sent} ({call.Method} {call.Path}, {call.ContentType}, {call.Body.Length} bytes) got HTTP {response.HttpStatus} without a grpc-status");
            Assert.That(response.Status, Is.Not.EqualTo(StatusCode.Unknown), $"request {sent} reached an unhandled exception");
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        TestContext.Out.WriteLine($"{sent} requests in {watch.Elapsed.TotalSeconds:0.0} s: " + string.Join(", ", outcomes.OrderByDescending(o => o.Value).Select(o => $"{o.Key}={o.Value}")));
        Assert.That(sent, Is.GreaterThanOrEqualTo(1000), "enough requests ran inside the time budget");

        var health = await new GrpcClient(http, server.H2c).UnaryAsync("/grpc.health.v1.Health/Check", new HealthCheckRequest(), HealthCheckResponse.Parser);
        Assert.That(health.Status, Is.EqualTo(HealthCheckResponse.Types.ServingStatus.Serving));
    }

    private static RawCall RandomCall(Random random)
    {
        var valid = new EchoRequest { Message = "fuzz", Payload = ByteString.CopyFrom(Bytes(random, random.Next(0, 64))) }.ToByteArray();
        var body = random.Next(8) switch
        {
            0 => Bytes(random, random.Next(0, 200)),
            1 => RawCall.Frame(valid)[..random.Next(0, valid.Length + 5)],
            2 => RawCall.Frame(Bytes(random, random.Next(0, 100))),
            3 => RawCall.Frame(valid, flag: (byte)random.Next(0, 4)),
            4 => RawCall.Frame(valid, declaredLength: random.Next()),
            5 => [.. RawCall.Frame(valid), .. RawCall.Frame(valid)],
            6 => [.. RawCall.Frame(valid), .. Bytes(random, random.Next(1, 6))],
            _ => RawCall.Frame(valid),
        };

        var headers = new Dictionary<string, string>();
        for (var i = random.Next(0, 3); i > 0; i--)
        {
            headers[HeaderNames[random.Next(HeaderNames.Length)]] = HeaderValues[random.Next(HeaderValues.Length)];
        }

        return new RawCall(Paths[random.Next(Paths.Length)], body)
        {
            Method = random.Next(20) == 0 ? "PUT" : "POST",
            ContentType = ContentTypes[random.Next(ContentTypes.Length)],
            Headers = headers,
        };
    }

    private static byte[] Bytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
