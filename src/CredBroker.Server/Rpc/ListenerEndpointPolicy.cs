using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Routing.Matching;

namespace CredBroker.Server.Rpc;

/// <summary>
/// Per-listener service sets in endpoint routing: a gRPC method endpoint matches only on the
/// listeners that serve its service. A call to the Operator service on the agent port therefore
/// finds no endpoint of its own and gets Grpc.AspNetCore's UNIMPLEMENTED, exactly like an unknown
/// service — it is never reachable there, whatever the client puts in :authority. The plain HTTP
/// endpoints (JWKS, health, metrics) match only off the gRPC listeners.
/// </summary>
public sealed class ListenerEndpointPolicy(GrpcListeners listeners, WebConsole.ConsoleListener? console = null) : MatcherPolicy, IEndpointSelectorPolicy
{
    private readonly HashSet<string> _served = listeners.All.SelectMany(l => l.Services).ToHashSet(StringComparer.Ordinal);

    public override int Order => 0;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) => true;

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        var listener = listeners.Find(httpContext.Connection.LocalPort);
        var onConsole = console is not null && httpContext.Connection.LocalPort == console.Port;
        for (var i = 0; i < candidates.Count; i++)
        {
            // Only endpoints of the broker's own services are filtered; the library's catch-all for
            // unknown services stays, so a refused call still ends with a gRPC status.
            if (!candidates.IsValidCandidate(i))
            {
                continue;
            }

            // The web console's endpoints answer on the console listener only, and nothing else does there (no gRPC, no JWKS).
            var consoleEndpoint = candidates[i].Endpoint.Metadata.GetMetadata<WebConsole.ConsoleEndpoint>() is not null;
            var grpc = candidates[i].Endpoint.Metadata.GetMetadata<GrpcMethodMetadata>();
            var valid = onConsole || consoleEndpoint ? onConsole && consoleEndpoint : grpc is null
                ? listener is null || candidates[i].Endpoint.Metadata.GetMetadata<PlainHttpEndpoint>() is null
                : !_served.Contains(grpc.Method.ServiceName) || listener?.Services.Contains(grpc.Method.ServiceName) == true;
            if (!valid)
            {
                candidates.SetValidity(i, false);
            }
        }

        return Task.CompletedTask;
    }
}

/// <summary>Marks the plain HTTP endpoints (JWKS, discovery, health, metrics): never served on a gRPC listener.</summary>
public sealed class PlainHttpEndpoint
{
    public static readonly PlainHttpEndpoint Instance = new();

    private PlainHttpEndpoint()
    {
    }
}
