using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace CredBroker.Grpc.Internal;

/// <summary>One gRPC call on one HTTP/2 stream: reads the request frames, writes response frames and the status.</summary>
internal sealed class ServerCall(HttpContext http, GrpcServerOptions options, string? requestEncoding, string? responseEncoding)
{
    private bool _bodyStarted;

    public Metadata ResponseHeaders { get; } = new();

    public Metadata ResponseTrailers { get; } = new();

    public HttpContext Http => http;

    /// <summary>Reads exactly one request message (unary and server-streaming requests carry one).</summary>
    public async Task<T> ReadSingleMessageAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        T? first = default;
        var count = 0;
        await foreach (var message in ReadMessagesAsync(parser, cancellationToken))
        {
            if (++count > 1)
            {
                throw new RpcException(StatusCode.Internal, "Additional data after the request message; this method takes exactly one message.");
            }

            first = message;
        }

        return count == 1 ? first! : throw new RpcException(StatusCode.Internal, "Request ended without a message; this method takes exactly one message.");
    }

    /// <summary>Reads request messages as they arrive until the client half-closes.</summary>
    public async IAsyncEnumerable<T> ReadMessagesAsync<T>(MessageParser<T> parser, [EnumeratorCancellation] CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        var reader = http.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            var messages = new List<T>();
            try
            {
                while (MessageCodec.TryReadFrame(ref buffer, options.MaxReceiveMessageSize, out var compressed, out var payload))
                {
                    var decoded = MessageCodec.Decode(payload, compressed, requestEncoding, options.MaxReceiveMessageSize);
                    messages.Add(MessageCodec.Parse(parser, decoded));
                }

                if (result.IsCompleted && !buffer.IsEmpty)
                {
                    throw new RpcException(StatusCode.Internal, "Request ended in the middle of a message frame (truncated message).");
                }
            }
            catch (RpcException)
            {
                reader.AdvanceTo(result.Buffer.End);
                throw;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            foreach (var message in messages)
            {
                yield return message;
            }

            if (result.IsCompleted)
            {
                yield break;
            }
        }
    }

    public async Task WriteMessageAsync(IMessage message, CancellationToken cancellationToken)
    {
        var frame = MessageCodec.Frame(message, options.MaxSendMessageSize, responseEncoding == "gzip");
        StartBody();
        await http.Response.BodyWriter.WriteAsync(frame, cancellationToken);
        await http.Response.BodyWriter.FlushAsync(cancellationToken);
    }

    /// <summary>
    /// Ends the call with a status: in trailers after a body, or as a trailers-only response
    /// (status in the HEADERS frame) when nothing was written yet.
    /// </summary>
    public void SetStatus(StatusCode code, string? message, Google.Rpc.Status? details = null)
    {
        var response = http.Response;
        var trailersOnly = !_bodyStarted && !response.HasStarted;
        Action<string, StringValues> write = trailersOnly
            ? (name, value) => response.Headers.Append(name, value)
            : response.AppendTrailer;
        if (trailersOnly)
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = GrpcProtocol.ContentType;
            WriteMetadata(ResponseHeaders, write);
        }

        write(GrpcProtocol.StatusHeader, ((int)code).ToString(CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(message))
        {
            write(GrpcProtocol.MessageHeader, GrpcProtocol.EncodeMessage(message));
        }

        if (details is not null)
        {
            write(GrpcProtocol.StatusDetailsHeader, Convert.ToBase64String(details.ToByteArray()).TrimEnd('='));
        }

        WriteMetadata(ResponseTrailers, write);
    }

    private void StartBody()
    {
        if (_bodyStarted)
        {
            return;
        }

        // BodyWriter does not flip HasStarted until a flush, so the flag is ours to keep.
        _bodyStarted = true;
        var response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = GrpcProtocol.ContentType;
        response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
        if (responseEncoding is not null)
        {
            response.Headers[GrpcProtocol.EncodingHeader] = responseEncoding;
        }

        WriteMetadata(ResponseHeaders, (name, value) => response.Headers.Append(name, value));
    }

    private static void WriteMetadata(Metadata metadata, Action<string, StringValues> write)
    {
        foreach (var entry in metadata)
        {
            write(entry.Name, entry.WireValue);
        }
    }
}
