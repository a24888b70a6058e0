namespace CredBroker.Core.Leases;

/// <summary>Stores that can count open leases cheaply (the expiry index), for the active-leases gauge.</summary>
public interface IOpenLeaseCount
{
    /// <summary>Leases in the expiry index: active, including any past their deadline and not yet swept.</summary>
    Task<long> CountOpenAsync(CancellationToken cancellationToken);
}
