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
}
