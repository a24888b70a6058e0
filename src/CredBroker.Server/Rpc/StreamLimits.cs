using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Connections;

namespace CredBroker.Server.Rpc;

/// <summary>
/// Concurrent server streams (WatchRevocations, WatchApproval, QueryAudit) per authenticated identity
/// and listener (<c>CredBroker:Listen:Grpc:MaxStreamsPerIdentity</c>): one caller cannot hold the
/// broker's streams and their Redis polling. A stream over the limit is refused with RESOURCE_EXHAUSTED.
/// </summary>
public sealed class StreamLimiter(int maxPerIdentity)
{
    private readonly ConcurrentDictionary<string, int> _open = new(StringComparer.Ordinal);

    public int MaxPerIdentity => maxPerIdentity;

    /// <summary>A slot for one stream of <paramref name="identity"/> (dispose it when the stream ends), or null when it holds the maximum.</summary>
    public IDisposable? TryAcquire(string identity)
    {
        while (true)
        {
            var current = _open.GetOrAdd(identity, 0);
            if (current >= maxPerIdentity)
            {
                return null;
            }

            if (_open.TryUpdate(identity, current + 1, current))
            {
                return new Slot(this, identity);
            }
        }
    }

    private void Release(string identity)
    {
        while (true)
        {
            var current = _open[identity];
            if (current <= 1 ? _open.TryRemove(new KeyValuePair<string, int>(identity, current)) : _open.TryUpdate(identity, current - 1, current))
            {
                return;
            }
        }
    }

    private sealed class Slot(StreamLimiter owner, string identity) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(identity);
            }
        }
    }
}

/// <summary>
/// Open connections per source IP address on one gRPC listener (<c>CredBroker:Listen:Grpc:MaxConnectionsPerAddress</c>),
/// as Kestrel connection middleware: a connection over the limit is closed at once, before TLS and
/// HTTP/2, so one address cannot exhaust the listener's sockets and memory.
/// </summary>
public sealed class ConnectionLimiter(int maxPerAddress)
{
    private readonly ConcurrentDictionary<IPAddress, int> _open = new();

    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (_open.AddOrUpdate(address, 1, (_, n) => n + 1) > maxPerAddress)
        {
            Release(address);
            connection.Abort(new ConnectionAbortedException($"more than {maxPerAddress} connections from {address}"));
            return;
        }

        try
        {
            await next(connection);
        }
        finally
        {
            Release(address);
        }
    }

    private void Release(IPAddress address)
    {
        while (true)
        {
            var current = _open[address];
            if (current <= 1 ? _open.TryRemove(new KeyValuePair<IPAddress, int>(address, current)) : _open.TryUpdate(address, current - 1, current))
            {
                return;
            }
        }
    }
}
