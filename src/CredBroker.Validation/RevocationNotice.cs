namespace CredBroker.Validation;

/// <summary>
/// One message of the broker's revocation feed (<c>TokenValidation.WatchRevocations</c>).
/// <see cref="Kind"/> is <c>lease</c> (tokens of <see cref="LeaseId"/> are revoked until
/// <see cref="NotAfter"/>), <c>agent</c> (tokens of <see cref="AgentId"/> issued before
/// <see cref="NotAfter"/> are revoked) or <c>heartbeat</c> (nothing happened; the feed is alive).
/// </summary>
public sealed record RevocationNotice(string Cursor, string Kind, string? LeaseId, string? AgentId, DateTimeOffset NotAfter);

/// <summary>Where revocation notices come from: the broker's feed, resumed after <c>cursor</c> ("" = every retained event).</summary>
public interface IRevocationFeed
{
    /// <summary>Notices after <paramref name="cursor"/>, then live ones, until cancelled or the stream breaks.</summary>
    /// <exception cref="RevocationCursorExpiredException">The cursor is older than what the broker retains.</exception>
    IAsyncEnumerable<RevocationNotice> WatchAsync(string cursor, CancellationToken cancellationToken);
}

/// <summary>The feed no longer holds the events after the cursor; the reader must start over from "".</summary>
public sealed class RevocationCursorExpiredException(string message, Exception? innerException = null) : Exception(message, innerException);
