using CredBroker.Server.Auth;
using CredBroker.Server.Services;
using Grpc.Core;

namespace CredBroker.Server.WebConsole;

/// <summary>
/// The call context a console action runs the Operator service's own handler with: the signed-in
/// operator as the authenticated caller (<see cref="CallGuard"/>), the browser request's abort
/// token, and the method name the role check and the audit records use.
/// </summary>
internal sealed class ConsoleCallContext : ServerCallContext
{
    private readonly HttpContext _http;
    private readonly Metadata _headers = [];
    private readonly Metadata _trailers = [];

    public ConsoleCallContext(string rpc, AuthenticatedCaller caller, HttpContext http)
    {
        _http = http;
        MethodCore = "/" + Services.OperatorService.ServiceName + "/" + rpc;
        CallGuard.SetCaller(this, caller);
    }

    protected override string MethodCore { get; }

    protected override string HostCore => _http.Request.Host.Value ?? string.Empty;

    protected override string PeerCore => _http.Connection.RemoteIpAddress is { } ip ? $"console:{ip}:{_http.Connection.RemotePort}" : "console";

    protected override DateTime DeadlineCore => DateTime.MaxValue;

    protected override Metadata RequestHeadersCore => _headers;

    protected override CancellationToken CancellationTokenCore => _http.RequestAborted;

    protected override Metadata ResponseTrailersCore => _trailers;

    protected override Status StatusCore { get; set; }

    protected override WriteOptions? WriteOptionsCore { get; set; }

    protected override AuthContext AuthContextCore => new(null, []);

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("Console calls do not propagate.");

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}

/// <summary>Collects what a server-streaming handler writes (the audit query, bounded by its own limit).</summary>
internal sealed class CollectingWriter<T> : IServerStreamWriter<T>
{
    public List<T> Items { get; } = [];

    public WriteOptions? WriteOptions { get; set; }

    public Task WriteAsync(T message)
    {
        Items.Add(message);
        return Task.CompletedTask;
    }

    public Task WriteAsync(T message, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return WriteAsync(message);
    }
}
