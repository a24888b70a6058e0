using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using CredBroker.Grpc.Internal;
using Google.Protobuf;

namespace CredBroker.Grpc;

/// <summary>
/// A gRPC client on <see cref="HttpClient"/> (HTTP/2, h2c or TLS): unary and server-streaming
/// calls. Non-OK statuses are thrown as <see cref="RpcException"/>.
/// </summary>
public sealed class GrpcClient
{
    private readonly HttpClient _http;
    private readonly Uri _address;

    public GrpcClient(HttpClient http, Uri address)
    {
        _http = http;
        _address = address;
    }

    /// <summary>Largest response message accepted.</summary>
    public int MaxReceiveMessageSize { get; init; } = 4 * 1024 * 1024;

    /// <summary>Largest request message sent.</summary>
    public int MaxSendMessageSize { get; init; } = 4 * 1024 * 1024;

    /// <summary>An HttpClient set up for gRPC: HTTP/2 only, prior knowledge for http:// addresses.</summary>
    public static HttpClient CreateHttpClient(HttpMessageHandler? handler = null) =>
        new(handler ?? new SocketsHttpHandler { EnableMultipleHttp2Connections = true })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CallOptions? options = null)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        TResponse? result = default;
        var count = 0;
        await foreach (var message in ServerStreamingAsync(method, request, parser, options))
        {
            result = message;
            count++;
        }

        return count == 1
            ? result!
            : throw new RpcException(StatusCode.Internal, $"Unary call {method} returned {count} messages; expected exactly one.");
    }

    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CallOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        options ??= CallOptions.Default;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, cancellationToken);
        if (options.Timeout is { } timeout)
        {
            cts.CancelAfter(timeout);
        }

        using var message = BuildRequest(method, request, options);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        }
        catch (OperationCanceledException) when (!options.CancellationToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new RpcException(StatusCode.DeadlineExceeded, "Deadline exceeded before the server answered.");
        }
        catch (HttpRequestException e)
        {
            throw new RpcException(StatusCode.Unavailable, $"Could not reach {_address}: {e.Message}", e);
        }

        using (response)
        {
            ThrowIfNotGrpc(response);
            if (TryGetStatus(response.Headers, out var earlyStatus, out var earlyMessage))
            {
                ThrowIfError(earlyStatus, earlyMessage);
                yield break;
            }

            var encoding = response.Headers.TryGetValues(GrpcProtocol.EncodingHeader, out var enc) ? enc.FirstOrDefault() : null;
            var body = await response.Content.ReadAsStreamAsync(cts.Token);
            var reader = System.IO.Pipelines.PipeReader.Create(body);
            while (true)
            {
                System.IO.Pipelines.ReadResult read;
                try
                {
                    read = await reader.ReadAsync(cts.Token);
                }
                catch (OperationCanceledException) when (!options.CancellationToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    throw new RpcException(StatusCode.DeadlineExceeded, "Deadline exceeded while reading the response.");
                }
                catch (IOException e)
                {
                    throw new RpcException(StatusCode.Unavailable, $"The response stream broke: {e.Message}", e);
                }

                var buffer = read.Buffer;
                var messages = new List<TResponse>();
                while (MessageCodec.TryReadFrame(ref buffer, MaxReceiveMessageSize, out var compressed, out var payload))
                {
                    messages.Add(MessageCodec.Parse(parser, MessageCodec.Decode(payload, compressed, encoding, MaxReceiveMessageSize)));
                }

                if (read.IsCompleted && !buffer.IsEmpty)
                {
                    throw new RpcException(StatusCode.Internal, "The response ended in the middle of a message frame.");
                }

                reader.AdvanceTo(buffer.Start, buffer.End);
                foreach (var m in messages)
                {
                    yield return m;
                }

                if (read.IsCompleted)
                {
                    break;
                }
            }

            await reader.CompleteAsync();
            if (!TryGetStatus(response.TrailingHeaders, out var status, out var statusMessage))
            {
                throw new RpcException(StatusCode.Internal, "The response ended without a grpc-status trailer.");
            }

            ThrowIfError(status, statusMessage);
        }
    }

    private HttpRequestMessage BuildRequest<TRequest>(string method, TRequest request, CallOptions options)
        where TRequest : IMessage<TRequest>
    {
        var frame = MessageCodec.Frame(request, MaxSendMessageSize);
        if (options.CompressRequest)
        {
            var compressed = MessageCodec.Gzip(frame.AsSpan(GrpcProtocol.FrameHeaderSize));
            var gz = new byte[GrpcProtocol.FrameHeaderSize + compressed.Length];
            gz[0] = 1;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(gz.AsSpan(1, 4), (uint)compressed.Length);
            compressed.CopyTo(gz.AsSpan(GrpcProtocol.FrameHeaderSize));
            frame = gz;
        }

        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(_address, method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue(GrpcProtocol.ContentType);
        message.Headers.TryAddWithoutValidation("te", "trailers");
        message.Headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcProtocol.SupportedEncodings);
        if (options.CompressRequest)
        {
            message.Headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, "gzip");
        }

        if (options.Timeout is { } timeout)
        {
            message.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcTimeout.Format(timeout));
        }

        foreach (var (name, value) in options.Metadata ?? new Dictionary<string, string>())
        {
            message.Headers.TryAddWithoutValidation(name, value);
        }

        return message;
    }

    /// <summary>Maps a non-gRPC HTTP answer to a status per the spec's HTTP-to-gRPC table.</summary>
    private static void ThrowIfNotGrpc(HttpResponseMessage response)
    {
        if (response.StatusCode == HttpStatusCode.OK)
        {
            return;
        }

        var code = response.StatusCode switch
        {
            HttpStatusCode.BadRequest => StatusCode.Internal,
            HttpStatusCode.Unauthorized => StatusCode.Unauthenticated,
            HttpStatusCode.Forbidden => StatusCode.PermissionDenied,
            HttpStatusCode.NotFound => StatusCode.Unimplemented,
            HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway
                or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout => StatusCode.Unavailable,
            _ => StatusCode.Unknown,
        };
        throw new RpcException(code, $"Bad gRPC response: HTTP status {(int)response.StatusCode}.");
    }

    private static bool TryGetStatus(HttpHeaders headers, out StatusCode status, out string message)
    {
        status = StatusCode.Unknown;
        message = string.Empty;
        if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var values))
        {
            return false;
        }

        status = int.TryParse(values.FirstOrDefault(), out var code) ? (StatusCode)code : StatusCode.Unknown;
        if (headers.TryGetValues(GrpcProtocol.MessageHeader, out var messages))
        {
            message = GrpcProtocol.DecodeMessage(messages.FirstOrDefault() ?? string.Empty);
        }

        return true;
    }

    private static void ThrowIfError(StatusCode status, string message)
    {
        if (status != StatusCode.OK)
        {
            throw new RpcException(status, message);
        }
    }
}
