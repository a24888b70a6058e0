using CredBroker.Client;
using Grpc.Core;

namespace CredBroker.Server.Tests;

internal static class Refused
{
    /// <summary>Awaits a call that must fail and returns its error (awaited, never blocked on: the in-process server shares the thread pool).</summary>
    public static async Task<RpcException> CallAsync<T>(Func<Task<T>> call)
    {
        try
        {
            await call();
        }
        catch (RpcException e)
        {
            return e;
        }

        Assert.Fail("the call succeeded but should have been refused");
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>
    /// The connection is refused below gRPC (no HTTP/2 session: TLS handshake refused, cleartext to a
    /// TLS port), so the call fails with a transport error: Grpc.Net.Client reports UNAVAILABLE, or
    /// INTERNAL when the server closes the connection before the HTTP/2 handshake (timing decides which).
    /// </summary>
    public static void AssertTransport(RpcException? error, string because = "")
    {
        Assert.That(error!.StatusCode, Is.EqualTo(StatusCode.Unavailable).Or.EqualTo(StatusCode.Internal), $"{because} {error.Message}");
        Assert.That(error.Status.DebugException, Is.InstanceOf<HttpRequestException>(), $"{because} {error.Message}");
    }
}
