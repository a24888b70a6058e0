using System.Runtime.CompilerServices;
using CredBroker.Validation;
using Google.Rpc;
using Grpc.Core;

namespace CredBroker.Client;

/// <summary>The broker's <c>WatchRevocations</c> stream as an <see cref="IRevocationFeed"/> for <see cref="RevocationSync"/>.</summary>
public sealed class BrokerRevocationFeed(CredBrokerClient client) : IRevocationFeed
{
    /// <inheritdoc />
    public async IAsyncEnumerable<RevocationNotice> WatchAsync(string cursor, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var events = client.WatchRevocationsAsync(cursor, cancellationToken: cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                try
                {
                    if (!await events.MoveNextAsync())
                    {
                        yield break;
                    }
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition && e.GetDetail<ErrorInfo>()?.Reason == "CURSOR_EXPIRED")
                {
                    throw new RevocationCursorExpiredException(e.Detail, e);
                }

                var c = events.Current;
                yield return new RevocationNotice(c.Cursor, c.Kind, c.LeaseId, c.AgentId,
                    c.NotAfter?.ToDateTimeOffset() ?? c.At?.ToDateTimeOffset() ?? DateTimeOffset.MinValue);
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }
}
