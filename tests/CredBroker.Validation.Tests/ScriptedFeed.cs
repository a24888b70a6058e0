using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace CredBroker.Validation.Tests;

/// <summary>A revocation feed the test drives: each WatchAsync call is recorded; notices and breaks are pushed.</summary>
internal sealed class ScriptedFeed : IRevocationFeed
{
    private readonly Channel<object> _current = Channel.CreateUnbounded<object>();
    private int _open;

    public List<string> Requests { get; } = [];

    /// <summary>Streams currently being read (a stopped reader leaves none).</summary>
    public int Open => Volatile.Read(ref _open);

    public ValueTask SendAsync(RevocationNotice notice) => _current.Writer.WriteAsync(notice);

    /// <summary>What the broker sends once it has nothing more: the reader has caught up.</summary>
    public ValueTask HeartbeatAsync(string cursor = "hb") => SendAsync(new RevocationNotice(cursor, "heartbeat", null, null, DateTimeOffset.UtcNow));

    public void Break(Exception e) => _current.Writer.TryWrite(e);

    public async IAsyncEnumerable<RevocationNotice> WatchAsync(string cursor, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        lock (Requests)
        {
            Requests.Add(cursor);
        }

        Interlocked.Increment(ref _open);
        try
        {
            await foreach (var item in _current.Reader.ReadAllAsync(cancellationToken))
            {
                if (item is Exception e)
                {
                    throw e;
                }

                yield return (RevocationNotice)item;
            }
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    }
}
