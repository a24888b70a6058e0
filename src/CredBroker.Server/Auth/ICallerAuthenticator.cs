using CredBroker.Server.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Auth;

/// <summary>A caller whose credential checked out. <see cref="AgentId"/> is null for non-agent workloads (e.g. a downstream API).</summary>
public sealed record AuthenticatedCaller(string Subject, string? AgentId, string Method)
{
    /// <summary>Operator roles (operator listener only; empty for workloads).</summary>
    public IReadOnlySet<OperatorRole> Roles { get; init; } = new HashSet<OperatorRole>();

    /// <summary>base64url SHA-256 of the TLS client certificate the call came over, if any (RFC 8705).</summary>
    public string? CertificateThumbprint { get; init; }

    /// <summary>The verified workload credential's string claims (the sources of the policy's verified context labels); empty otherwise.</summary>
    public IReadOnlyDictionary<string, string>? Claims { get; init; }
}

/// <summary>Proves who is calling from the call's credentials; throws UNAUTHENTICATED with the reason otherwise.</summary>
public interface ICallerAuthenticator
{
    Task<AuthenticatedCaller> AuthenticateAsync(ServerCallContext context);
}

internal static class BearerToken
{
    public const int MaxLength = 8 * 1024;

    public static string Read(ServerCallContext context)
    {
        var header = context.Header("authorization");
        if (string.IsNullOrEmpty(header))
        {
            throw RpcErrors.Create(StatusCode.Unauthenticated, "Missing credentials: send metadata 'authorization: Bearer <workload credential>'.");
        }

        if (header.Length > MaxLength)
        {
            throw RpcErrors.Create(StatusCode.Unauthenticated, $"The authorization metadata exceeds {MaxLength} bytes.");
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length == 7)
        {
            throw RpcErrors.Create(StatusCode.Unauthenticated, "The authorization metadata must have the form 'Bearer <credential>'.");
        }

        return header[7..].Trim();
    }
}
