using System.Security.Cryptography;
using System.Text;
using CredBroker.Server.Rpc;
using Grpc.Core;

namespace CredBroker.Server.Auth;

/// <summary>
/// Dev mode only: one shared secret stands for one caller (the dev agent, or the dev operator with no
/// agent id). Compared in constant time over hashes, so neither content nor length leaks through timing.
/// </summary>
public sealed class DevSecretAuthenticator(string secret, string subject, string? agentId, IReadOnlySet<OperatorRole>? roles = null) : ICallerAuthenticator
{
    private readonly byte[] _expected = SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    public Task<AuthenticatedCaller> AuthenticateAsync(ServerCallContext context)
    {
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(BearerToken.Read(context)));
        if (!CryptographicOperations.FixedTimeEquals(presented, _expected))
        {
            throw RpcErrors.Create(StatusCode.Unauthenticated, "The credential is not valid on this listener.");
        }

        return Task.FromResult(new AuthenticatedCaller(subject, agentId, "dev-secret") { Roles = roles ?? new HashSet<OperatorRole>() });
    }
}
