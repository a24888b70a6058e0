namespace CredBroker.Validation.Tests;

/// <summary>Stands in for the broker's JWKS endpoint: counts fetches, can fail, can hold fetches open.</summary>
internal sealed class FakeJwksEndpoint(string document)
{
    private int _fetches;

    public string Document { get; set; } = document;

    public Exception? Failure { get; set; }

    /// <summary>When set, fetches wait for it to complete.</summary>
    public TaskCompletionSource? Gate { get; set; }

    public int Fetches => Volatile.Read(ref _fetches);

    public async Task<string> FetchAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _fetches);
        if (Gate is { } gate)
        {
            await gate.Task.WaitAsync(cancellationToken);
        }

        return Failure is { } failure ? throw failure : Document;
    }
}
