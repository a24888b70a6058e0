using CredBroker.Client;
using CredBroker.Contracts.V1;
using Google.Protobuf.WellKnownTypes;

namespace McpAgentSample;

/// <summary>
/// The token of one task, kept fresh: <see cref="GetAsync"/> renews the lease (which returns a fresh token) when the
/// current token is within <see cref="RenewAhead"/> of its <c>exp</c>, so a long task never presents an expired token.
/// </summary>
public sealed class TaskToken(CredBrokerClient broker, string leaseId, string token, DateTimeOffset expiresAt, TimeProvider time)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Renew when the token has less than this left; default 60 s.</summary>
    public TimeSpan RenewAhead { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How much longer the task asks for at each renewal; default 10 minutes.</summary>
    public TimeSpan ExtendBy { get; init; } = TimeSpan.FromMinutes(10);

    public string LeaseId => leaseId;

    public DateTimeOffset ExpiresAt => expiresAt;

    /// <summary>The current token, renewed first when it nears <c>exp</c>.</summary>
    public async Task<string> GetAsync(CancellationToken cancellationToken)
    {
        if (expiresAt - time.GetUtcNow() > RenewAhead)
        {
            return token;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (expiresAt - time.GetUtcNow() <= RenewAhead)
            {
                await RenewAsync(cancellationToken);
            }

            return token;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Extends the lease (never past the agent's max lifetime) and takes the fresh token it returns.</summary>
    public async Task<RenewLeaseResponse> RenewAsync(CancellationToken cancellationToken)
    {
        var renewed = await broker.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = leaseId, ExtendBy = Duration.FromTimeSpan(ExtendBy) }, cancellationToken);
        (token, expiresAt) = (renewed.AccessToken, renewed.TokenExpiresAt.ToDateTimeOffset());
        return renewed;
    }
}

/// <summary>
/// Puts the task's current token on every MCP request (so a renewed token is used by the same MCP session) and
/// reports the server's <c>WWW-Authenticate</c> challenge of a 401 or 403 (the reason, the missing scope).
/// </summary>
public sealed class TaskTokenHandler(Func<CancellationToken, Task<string>> token, Action<string>? onChallenge = null) : DelegatingHandler(new SocketsHttpHandler())
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.Authorization = new("Bearer", await token(cancellationToken));
        var response = await base.SendAsync(request, cancellationToken);
        if (response.Headers.WwwAuthenticate.Count > 0)
        {
            onChallenge?.Invoke(response.Headers.WwwAuthenticate.ToString());
        }

        return response;
    }
}
