using System.Net;
using CredBroker.Grpc;
using CredBroker.Testing.Interop;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Health.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using StatusCode = CredBroker.Grpc.StatusCode;

namespace CredBroker.Testing.Grpc;

/// <summary>
/// The credbroker.testing.v1.Interop service (see tests/interop/protos/interop.proto) on our gRPC
/// layer, with health and reflection, on three loopback listeners: h2c, TLS and mTLS. Every client
/// suite (.NET, Python grpcio, Node grpc-js) runs its matrix against it.
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
            kestrel.Listen(IPAddress.Loopback, 0, l => l.UseGrpcTls(new GrpcTlsOptions { CertificateFile = certificates.ServerCertFile, KeyFile = certificates.ServerKeyFile }));
            kestrel.Listen(IPAddress.Loopback, 0, l => l.UseGrpcTls(new GrpcTlsOptions
            {
                CertificateFile = certificates.ServerCertFile,
                KeyFile = certificates.ServerKeyFile,
                ClientCaFile = certificates.CaFile,
            }));
        });
        _app = builder.Build();

        var registry = new GrpcMethodRegistry()
            .AddUnary<EchoRequest, EchoResponse>(Service, "Echo", EchoRequest.Parser, EchoAsync)
            .AddServerStreaming<CountRequest, CountResponse>(Service, "Count", CountRequest.Parser, CountAsync)
            .AddUnary<StatsRequest, StatsResponse>(Service, "Stats", StatsRequest.Parser,
                (_, _) => Task.FromResult(new StatsResponse { CancelledStreams = Volatile.Read(ref _cancelledStreams) }));
        new HealthService(_ => Task.FromResult(true), [Service]).Register(registry);
        registry.AddServerReflection(InteropReflection.Descriptor, HealthReflection.Descriptor);
        _app.UseGrpcMethods(registry, new GrpcServerOptions { MaxUnaryDeadline = MaxUnaryDeadline });
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

    private static async Task<EchoResponse> EchoAsync(EchoRequest request, GrpcCallContext context)
    {
        foreach (var entry in context.RequestMetadata().Where(e => e.Name.StartsWith("x-echo-", StringComparison.Ordinal)))
        {
            var trailer = "x-trailer-" + entry.Name["x-echo-".Length..];
            if (entry.Bytes is { } bytes)
            {
                context.ResponseHeaders.Add(entry.Name, bytes);
                context.ResponseTrailers.Add(trailer, bytes);
            }
            else
            {
                context.ResponseHeaders.Add(entry.Name, entry.Value!);
                context.ResponseTrailers.Add(trailer, entry.Value!);
            }
        }

        if (request.DelayMs > 0)
        {
            await Task.Delay(request.DelayMs, context.CancellationToken);
        }

        if (request.FailCode != 0)
        {
            var info = new ErrorInfo { Reason = "TEST_FAILURE", Domain = "interop.test" };
            info.Metadata["echo"] = request.Message;
            throw new RpcException((StatusCode)request.FailCode, request.FailMessage, [info]);
        }

        return new EchoResponse
        {
            Message = request.Message,
            Padding = ByteString.CopyFrom(new byte[Math.Max(0, request.ResponseSize)]),
            RequestCompressed = context.GetMetadata("grpc-encoding") == "gzip",
            PayloadSize = request.Payload.Length,
            ClientCertificateSubject = context.ClientCertificate?.Subject ?? string.Empty,
        };
    }

    private async Task CountAsync(CountRequest request, IServerStreamWriter<CountResponse> stream, GrpcCallContext context)
    {
        try
        {
            for (var i = 0; i < request.Count; i++)
            {
                if (request.FailAfter > 0 && i == request.FailAfter)
                {
                    throw new RpcException(StatusCode.Aborted, $"failed after {i} messages");
                }

                if (request.DelayMs > 0 && i > 0)
                {
                    await Task.Delay(request.DelayMs, context.CancellationToken);
                }

                await stream.WriteAsync(new CountResponse { Index = i });
            }
        }
        catch (Exception e) when (e is not RpcException && context.CancellationToken.IsCancellationRequested && !(DateTimeOffset.UtcNow >= context.Deadline))
        {
            Interlocked.Increment(ref _cancelledStreams);
            throw;
        }
    }
}
