using System.Net;
using CredBroker.Server.Hosting;
using CredBroker.Server.Rpc;
using CredBroker.Testing.Interop;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using Status = Grpc.Core.Status;
using StatusCode = Grpc.Core.StatusCode;

namespace CredBroker.Testing.Grpc;

/// <summary>
/// The credbroker.testing.v1.Interop service (see tests/interop/protos/interop.proto) on
/// Grpc.AspNetCore with the broker's gRPC layer (limits, bounded gzip, malformed messages, deadlines),
/// health and reflection, on three loopback listeners: h2c, TLS and mTLS. Every client suite
/// (.NET, Python grpcio, Node grpc-js) runs its matrix against it.
/// </summary>
public sealed class InteropServer : IAsyncDisposable
{
    public const string Service = "credbroker.testing.v1.Interop";

    /// <summary>The server-side cap on unary deadlines, short so "server deadline" cases run fast.</summary>
    public static readonly TimeSpan MaxUnaryDeadline = TimeSpan.FromSeconds(3);

    private readonly WebApplication _app;
    private int _cancelledStreams;

    private InteropServer(TestCertificates certificates)
    {
        Certificates = certificates;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2);
            kestrel.Listen(IPAddress.Loopback, 0, l => l.UseListenerTls(new ListenerTlsOptions { CertificateFile = certificates.ServerCertFile, KeyFile = certificates.ServerKeyFile }));
            kestrel.Listen(IPAddress.Loopback, 0, l => l.UseListenerTls(new ListenerTlsOptions
            {
                CertificateFile = certificates.ServerCertFile,
                KeyFile = certificates.ServerKeyFile,
                ClientCaFile = certificates.CaFile,
            }));
        });
        builder.Services.AddGrpcLayer(64 * 1024, 4 * 1024 * 1024, compressResponses: false);
        builder.Services.AddGrpcReflection();
        var health = new HealthServiceImpl();
        health.SetStatus(string.Empty, HealthCheckResponse.Types.ServingStatus.Serving);
        health.SetStatus(Service, HealthCheckResponse.Types.ServingStatus.Serving);
        builder.Services.AddSingleton(health);
        builder.Services.AddSingleton(new InteropService(this));
        _app = builder.Build();
        _app.UseRouting();
        _app.UseGrpcRequestChecks(new GrpcDeadlines(MaxUnaryDeadline, TimeSpan.FromDays(7)));
        _app.MapGrpcService<InteropService>();
        _app.MapGrpcService<HealthServiceImpl>();
        _app.MapGrpcReflectionService();
    }

    public TestCertificates Certificates { get; }

    /// <summary>Cleartext HTTP/2 (h2c).</summary>
    public Uri H2c { get; private set; } = null!;

    /// <summary>TLS, no client certificate.</summary>
    public Uri Tls { get; private set; } = null!;

    /// <summary>TLS requiring a client certificate issued by <see cref="TestCertificates.Ca"/>.</summary>
    public Uri MutualTls { get; private set; } = null!;

    public static async Task<InteropServer> StartAsync()
    {
        var server = new InteropServer(TestCertificates.Create());
        await server._app.StartAsync();
        // Kestrel reports the bound addresses in the order the listeners were declared.
        var urls = server._app.Urls.Select(u => new Uri(u)).ToList();
        var tls = urls.Where(u => u.Scheme == "https").Select(u => u.Port).ToList();
        server.H2c = new Uri($"http://127.0.0.1:{urls.Single(u => u.Scheme == "http").Port}");
        server.Tls = new Uri($"https://localhost:{tls[0]}");
        server.MutualTls = new Uri($"https://localhost:{tls[1]}");
        return server;
    }

    /// <summary>Environment for a client process: addresses and the PEM files.</summary>
    public IDictionary<string, string> ClientEnvironment() => new Dictionary<string, string>
    {
        ["INTEROP_H2C"] = $"127.0.0.1:{H2c.Port}",
        ["INTEROP_TLS"] = $"localhost:{Tls.Port}",
        ["INTEROP_MTLS"] = $"localhost:{MutualTls.Port}",
        ["INTEROP_CERTS"] = Certificates.Directory,
        ["INTEROP_PROTO_DIR"] = ProtoDirectory(),
    };

    /// <summary>tests/interop/protos, found from the test binary's location.</summary>
    public static string ProtoDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "interop", "protos");
            if (File.Exists(Path.Combine(candidate, "interop.proto")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("tests/interop/protos not found above " + AppContext.BaseDirectory);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Certificates.Dispose();
    }

    /// <summary>credbroker.testing.v1.Interop on Grpc.AspNetCore (see interop.proto for what each method does).</summary>
    private sealed class InteropService(InteropServer server) : Interop.Interop.InteropBase
    {
        public override async Task<EchoResponse> Echo(EchoRequest request, ServerCallContext context)
        {
            var headers = new Metadata();
            foreach (var entry in context.RequestHeaders.Where(e => e.Key.StartsWith("x-echo-", StringComparison.Ordinal)))
            {
                var trailer = "x-trailer-" + entry.Key["x-echo-".Length..];
                if (entry.IsBinary)
                {
                    headers.Add(entry.Key, entry.ValueBytes);
                    context.ResponseTrailers.Add(trailer, entry.ValueBytes);
                }
                else
                {
                    headers.Add(entry.Key, entry.Value);
                    context.ResponseTrailers.Add(trailer, entry.Value);
                }
            }

            if (headers.Count > 0)
            {
                await context.WriteResponseHeadersAsync(headers);
            }

            if (request.DelayMs > 0)
            {
                await Task.Delay(request.DelayMs, context.CancellationToken);
            }

            if (request.FailCode != 0)
            {
                var info = new ErrorInfo { Reason = "TEST_FAILURE", Domain = "interop.test" };
                info.Metadata["echo"] = request.Message;
                throw new Google.Rpc.Status { Code = request.FailCode, Message = request.FailMessage, Details = { Any.Pack(info) } }.ToRpcException();
            }

            var http = context.GetHttpContext();
            return new EchoResponse
            {
                Message = request.Message,
                Padding = ByteString.CopyFrom(new byte[Math.Max(0, request.ResponseSize)]),
                RequestCompressed = http.Request.Headers["grpc-encoding"] == "gzip",
                PayloadSize = request.Payload.Length,
                ClientCertificateSubject = http.Connection.ClientCertificate?.Subject ?? string.Empty,
            };
        }

        public override async Task Count(CountRequest request, IServerStreamWriter<CountResponse> responseStream, ServerCallContext context)
        {
            try
            {
                for (var i = 0; i < request.Count; i++)
                {
                    if (request.FailAfter > 0 && i == request.FailAfter)
                    {
                        throw new RpcException(new Status(StatusCode.Aborted, $"failed after {i} messages"));
                    }

                    if (request.DelayMs > 0 && i > 0)
                    {
                        await Task.Delay(request.DelayMs, context.CancellationToken);
                    }

                    await responseStream.WriteAsync(new CountResponse { Index = i });
                }
            }
            catch (Exception e) when (e is not RpcException && context.CancellationToken.IsCancellationRequested && DateTime.UtcNow < context.Deadline)
            {
                Interlocked.Increment(ref server._cancelledStreams);
                throw;
            }
        }

        public override Task<StatsResponse> Stats(StatsRequest request, ServerCallContext context) =>
            Task.FromResult(new StatsResponse { CancelledStreams = Volatile.Read(ref server._cancelledStreams) });
    }
}
