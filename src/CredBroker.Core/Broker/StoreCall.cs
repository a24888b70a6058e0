namespace CredBroker.Core.Broker;

/// <summary>Fail closed: a store that cannot be reached becomes UNAVAILABLE with a message saying nothing was changed.</summary>
internal static class StoreCall
{
    public static async Task<T> Run<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (StoreUnavailableException e)
        {
            throw new BrokerException(BrokerErrorKind.Unavailable,
                $"The lease store is unavailable ({e.Message}); nothing was issued or changed. Retry with backoff.", null, e);
        }
    }
}
