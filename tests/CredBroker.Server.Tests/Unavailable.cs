using CredBroker.Client;
using Grpc.Core;

namespace CredBroker.Server.Tests;

internal static class Unavailable
{
    /// <summary>Retries while the broker answers UNAVAILABLE (Redis reconnecting in the background), for up to 20 s.</summary>
    public static async Task<T> RetryAsync<T>(Func<Task<T>> action)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                return await action();
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
