using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using CredBroker.Grpc.Internal;
using Google.Protobuf;

namespace CredBroker.Grpc;

/// <summary>A unary call's answer with the metadata that came with it.</summary>
public sealed record UnaryResult<TResponse>(TResponse Message, Metadata Headers, Metadata Trailers);

/// <summary>
/// A gRPC client on <see cref="HttpClient"/> (HTTP/2, h2c or TLS): unary and server-streaming
/// calls over one reused connection. Non-OK statuses are thrown as <see cref="RpcException"/>.
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

    /// <summary>How idempotent calls (<see cref="CallOptions.Idempotent"/>) are retried on UNAVAILABLE.</summary>
    public RetryPolicy RetryPolicy { get; init; } = RetryPolicy.Default;

    /// <summary>
    /// An HttpClient set up for gRPC: HTTP/2 only (prior knowledge for http://, ALPN h2 for https://).
    /// <paramref name="clientCertificate"/> (with its private key) is presented for mTLS;
    /// <paramref name="trustedRoot"/> replaces the system trust store for the server's certificate.
    /// </summary>
    public static HttpClient CreateHttpClient(X509Certificate2? clientCertificate = null, X509Certificate2? trustedRoot = null)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
        };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        if (trustedRoot is not null)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                certificate is not null && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
                && GrpcTls.ChainsTo(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()), [trustedRoot], requiredUsage: null);
        }

        return new HttpClient(handler)
        {
            Timeout = Timeout.InfiniteTimeSpan,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
    }

    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CallOptions? options = null)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
        => (await UnaryCallAsync(method, request, parser, options)).Message;

    /// <summary>A unary call that also returns the response headers and trailers.</summary>
    public async Task<UnaryResult<TResponse>> UnaryCallAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CallOptions? options = null)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        options ??= CallOptions.Default;
        var attempts = options.Idempotent ? Math.Max(1, RetryPolicy.MaxAttempts) : 1;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await UnaryOnceAsync(method, request, parser, options);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && attempt < attempts && !options.CancellationToken.IsCancellationRequested)
            {
                await Task.Delay(RetryPolicy.Backoff(attempt + 1), options.CancellationToken);
            }
        }
    }

    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CallOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        await foreach (var message in CallAsync(method, request, parser, options ?? CallOptions.Default, new CallMetadata(), cancellationToken))
        {
            yield return message;
        }
    }

    private async Task<UnaryResult<TResponse>> UnaryOnceAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CallOptions options)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        var metadata = new CallMetadata();
        var messages = new List<TResponse>(1);
        await foreach (var message in CallAsync(method, request, parser, options, metadata, default))
        {
            messages.Add(message);
        }

        return messages.Count == 1
            ? new UnaryResult<TResponse>(messages[0], metadata.Headers, metadata.Trailers)
            : throw new RpcException(StatusCode.Internal, $"Unary call {method} returned {messages.Count} messages; expected exactly one.");
    }

    private sealed class CallMetadata
    {
        public Metadata Headers { get; set; } = new();

        public Metadata Trailers { get; set; } = new();
    }

    private async IAsyncEnumerable<TResponse> CallAsync<TRequest, TResponse>(
        string method, TRequest request, MessageParser<TResponse> parser, CallOptions options, CallMetadata metadata,
        [EnumeratorCancellation] CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, cancellationToken);
        if (options.Timeout is { } timeout)
        {
            cts.CancelAfter(timeout);
        }

        bool DeadlinePassed() => !options.CancellationToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested;
        using var message = BuildRequest(method, request, options);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cts.Token);
        }
        catch (OperationCanceledException) when (DeadlinePassed())
        {
            throw new RpcException(StatusCode.DeadlineExceeded, "Deadline exceeded before the server answered.");
        }
        catch (OperationCanceledException)
        {
            throw new RpcException(StatusCode.Cancelled, "The call was cancelled by the caller.");
        }
        catch (HttpRequestException e)
        {
            throw new RpcException(StatusCode.Unavailable, $"Could not reach {_address}: {e.Message}", e);
        }

        using (response)
        {
            ThrowIfNotGrpc(response);
            metadata.Headers = ReadMetadata(response.Headers);
            if (response.Headers.Contains(GrpcProtocol.StatusHeader))
            {
                // Trailers-only: the status came in the headers.
                ThrowIfError(response.Headers, metadata.Headers);
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
                catch (OperationCanceledException) when (DeadlinePassed())
                {
                    throw new RpcException(StatusCode.DeadlineExceeded, "Deadline exceeded while reading the response.");
                }
                catch (OperationCanceledException)
                {
                    throw new RpcException(StatusCode.Cancelled, "The call was cancelled by the caller.");
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
            if (!response.TrailingHeaders.Contains(GrpcProtocol.StatusHeader))
            {
                throw new RpcException(StatusCode.Internal, "The response ended without a grpc-status trailer.");
            }

            metadata.Trailers = ReadMetadata(response.TrailingHeaders);
            ThrowIfError(response.TrailingHeaders, metadata.Trailers);
        }
    }

    private HttpRequestMessage BuildRequest<TRequest>(string method, TRequest request, CallOptions options)
        where TRequest : IMessage<TRequest>
    {
        var message = new HttpRequestMessage(HttpMethod.Post, new Uri(_address, method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(MessageCodec.Frame(request, MaxSendMessageSize, options.CompressRequest)),
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

        foreach (var entry in options.Metadata ?? new Metadata())
        {
            message.Headers.TryAddWithoutValidation(entry.Name, entry.WireValue);
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

    private static Metadata ReadMetadata(HttpHeaders headers) =>
        Metadata.FromHeaders(headers.NonValidated.Select(h => (h.Key, (IEnumerable<string?>)h.Value)));

    private static void ThrowIfError(HttpHeaders headers, Metadata trailers)
    {
        var status = headers.TryGetValues(GrpcProtocol.StatusHeader, out var codes)
            && int.TryParse(codes.FirstOrDefault(), out var code) ? (StatusCode)code : StatusCode.Unknown;
        if (status == StatusCode.OK)
        {
            return;
        }

        var message = headers.TryGetValues(GrpcProtocol.MessageHeader, out var messages)
            ? GrpcProtocol.DecodeMessage(messages.FirstOrDefault() ?? string.Empty)
            : string.Empty;
        var details = headers.TryGetValues(GrpcProtocol.StatusDetailsHeader, out var bin)
            && Base64Codec.TryDecode(bin.FirstOrDefault() ?? string.Empty) is { } bytes
            ? TryParseStatus(bytes)?.Details.ToList() ?? []
            : [];
        throw new RpcException(status, message, details) { Trailers = trailers };
    }

    private static Google.Rpc.Status? TryParseStatus(byte[] bytes)
    {
        try
        {
            return Google.Rpc.Status.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }
}
