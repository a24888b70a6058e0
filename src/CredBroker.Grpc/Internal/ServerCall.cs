using System.Buffers;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace CredBroker.Grpc.Internal;

/// <summary>One gRPC call on one HTTP/2 stream: reads the request frames, writes response frames and the status.</summary>
internal sealed class ServerCall
{
    private readonly HttpContext _http;
    private readonly GrpcServerOptions _options;
    private readonly string? _requestEncoding;
    private bool _bodyStarted;

    public ServerCall(HttpContext http, GrpcServerOptions options, string? requestEncoding)
    {
        _http = http;
        _options = options;
        _requestEncoding = requestEncoding;
    }

    public bool BodyStarted => _bodyStarted;

    /// <summary>Reads exactly one request message (unary and server-streaming requests carry one).</summary>
    public async Task<T> ReadSingleMessageAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        var reader = _http.Request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            var rest = buffer;
            try
            {
                if (MessageCodec.TryReadFrame(ref rest, _options.MaxReceiveMessageSize, out var compressed, out var payload))
                {
                    if (!rest.IsEmpty)
                    {
                        throw new RpcException(StatusCode.Internal, "Additional data after the request message; this method takes exactly one message.");
                    }

                    if (!result.IsCompleted)
                    {
                        // The frame is complete but the stream is not: wait for end-of-stream (or more data, which is an error).
                        reader.AdvanceTo(buffer.Start, buffer.End);
                        continue;
                    }

                    var decoded = MessageCodec.Decode(payload, compressed, _requestEncoding, _options.MaxReceiveMessageSize);
                    return MessageCodec.Parse(parser, decoded);
                }

                if (result.IsCompleted)
                {
                    throw new RpcException(StatusCode.Internal, buffer.IsEmpty
                        ? "Request ended without a message; this method takes exactly one message."
                        : "Request ended in the middle of a message frame (truncated message).");
                }
            }
            catch (RpcException)
            {
                reader.AdvanceTo(buffer.End);
                throw;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    public async Task WriteMessageAsync(IMessage message, CancellationToken cancellationToken)
    {
        var frame = MessageCodec.Frame(message, _options.MaxSendMessageSize);
        StartBody();
        await _http.Response.BodyWriter.WriteAsync(frame, cancellationToken);
        await _http.Response.BodyWriter.FlushAsync(cancellationToken);
    }

    /// <summary>
    /// Ends the call with a status: in trailers after a body, or as a trailers-only response
    /// (status in the HEADERS frame) when nothing was written yet.
    /// </summary>
    public void SetStatus(StatusCode code, string? message)
    {
        var response = _http.Response;
        if (!_bodyStarted && !response.HasStarted)
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = GrpcProtocol.ContentType;
            response.Headers[GrpcProtocol.StatusHeader] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!string.IsNullOrEmpty(message))
            {
                response.Headers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(message);
            }

            return;
        }

        response.AppendTrailer(GrpcProtocol.StatusHeader, new StringValues(((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (!string.IsNullOrEmpty(message))
        {
            response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcProtocol.EncodeMessage(message));
        }
    }

    private void StartBody()
    {
        if (_bodyStarted)
        {
            return;
        }

        // BodyWriter does not flip HasStarted until a flush, so the flag is ours to keep.
        _bodyStarted = true;
        _http.Response.StatusCode = StatusCodes.Status200OK;
        _http.Response.ContentType = GrpcProtocol.ContentType;
        _http.Response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
    }
}
