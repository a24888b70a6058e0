namespace CredBroker.Grpc;

/// <summary>Writes the messages of a server-streaming response; each write is flushed.</summary>
public interface IServerStreamWriter<in T>
{
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}
