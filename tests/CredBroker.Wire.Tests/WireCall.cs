using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace CredBroker.Wire.Tests;

/// <summary>gRPC status codes as numbers on the wire (PROTOCOL-HTTP2); no gRPC library's enum.</summary>
public enum Code
{
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// <summary>The 5-byte gRPC message prefix and gzip, by hand.</summary>
public static class Framing
{
    public static byte[] Frame(IMessage message, byte flag = 0) => Frame(message.ToByteArray(), flag);

    /// <summary>One length-prefixed message: flag byte, 4-byte big-endian length (or <paramref name="declaredLength"/>), payload.</summary>
    public static byte[] Frame(byte[] payload, byte flag = 0, uint? declaredLength = null)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), declaredLength ?? (uint)payload.Length);
        payload.CopyTo(frame.AsSpan(5));
        return frame;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static byte[] Gunzip(byte[] data)
    {
        using var input = new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    /// <summary>Splits a response body into its length-prefixed messages (compressed flag and payload as sent).</summary>
    public static List<(bool Compressed, byte[] Payload)> Split(byte[] body)
    {
        var messages = new List<(bool, byte[])>();
        var at = 0;
        while (at < body.Length)
        {
            Assert.That(body.Length - at, Is.GreaterThanOrEqualTo(5), "a response message prefix is cut short");
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(at + 1, 4));
            Assert.That(body.Length - at - 5, Is.GreaterThanOrEqualTo(length), "a response message is cut short");
            messages.Add((body[at] == 1, body.AsSpan(at + 5, length).ToArray()));
            at += 5 + length;
        }

        return messages;
    }
}

/// <summary>An h2c client with HTTP/2 prior knowledge, the way every gRPC client reaches a cleartext listener.</summary>
public static class H2c
{
    public static HttpClient Client() => new(new SocketsHttpHandler
    {
        EnableMultipleHttp2Connections = true,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        // Nothing in the harness may add its own Accept-Encoding or decompress bodies behind our back.
        AutomaticDecompression = DecompressionMethods.None,
    })
    {
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = TimeSpan.FromSeconds(60),
    };
}

/// <summary>A gRPC request built byte by byte, so a test can send what no well-behaved client would.</summary>
public sealed record WireCall(string Path, byte[] Body)
{
    public string ContentType { get; init; } = "application/grpc";

    /// <summary>Request metadata; a null value leaves the header out.</summary>
    public IReadOnlyList<(string Name, string Value)> Headers { get; init; } = [];

    public static WireCall Unary(string path, IMessage message, params (string Name, string Value)[] headers) =>
        new(path, Framing.Frame(message)) { Headers = headers };

    public HttpRequestMessage ToRequest(Uri listener, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(listener, Path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content ?? new ByteArrayContent(Body),
        };
        request.Content.Headers.TryAddWithoutValidation("content-type", ContentType);
        request.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (name, value) in Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    /// <summary>Sends the call and reads the whole answer (headers, body, trailers).</summary>
    public async Task<WireResponse> SendAsync(HttpClient http, Uri listener, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        using var request = ToRequest(listener);
        using var response = await http.SendAsync(request, timeout.Token);
        var body = await response.Content.ReadAsByteArrayAsync(timeout.Token);
        return WireResponse.From(response, body);
    }
}

/// <summary>What came back: HTTP status, headers, body and trailers, with the gRPC status read from trailers or a trailers-only answer.</summary>
public sealed record WireResponse(int HttpStatus, IReadOnlyDictionary<string, string> Headers, IReadOnlyDictionary<string, string> Trailers, byte[] Body)
{
    public static WireResponse From(HttpResponseMessage response, byte[] body) =>
        new((int)response.StatusCode, Flatten(response.Headers, response.Content.Headers), Flatten(response.TrailingHeaders), body);

    public static Dictionary<string, string> Flatten(params HttpHeaders[] headers) =>
        headers.SelectMany(h => h.NonValidated).ToDictionary(h => h.Key.ToLowerInvariant(), h => string.Join(",", h.Value));

    /// <summary>The grpc-status from the trailers, or from the headers of a trailers-only response; null when there is none.</summary>
    public Code? Status =>
        Trailers.TryGetValue("grpc-status", out var s) || Headers.TryGetValue("grpc-status", out s)
            ? (Code)int.Parse(s, System.Globalization.CultureInfo.InvariantCulture)
            : null;

    /// <summary>grpc-message, percent-decoded.</summary>
    public string Message =>
        Uri.UnescapeDataString(Trailers.GetValueOrDefault("grpc-message") ?? Headers.GetValueOrDefault("grpc-message") ?? string.Empty);

    /// <summary>The google.rpc.Status from grpc-status-details-bin, if the server sent one.</summary>
    public Google.Rpc.Status? Details =>
        (Trailers.TryGetValue("grpc-status-details-bin", out var d) || Headers.TryGetValue("grpc-status-details-bin", out d))
            ? Google.Rpc.Status.Parser.ParseFrom(Convert.FromBase64String(Pad(d)))
            : null;

    public T? Detail<T>()
        where T : class, IMessage<T>, new() =>
        Details?.Details.FirstOrDefault(a => a.Is(new T().Descriptor))?.Unpack<T>();

    /// <summary>The messages of the body, decompressed when flagged (gzip is the only encoding these tests accept).</summary>
    public List<T> Messages<T>(MessageParser<T> parser)
        where T : IMessage<T> =>
        Framing.Split(Body).Select(m => parser.ParseFrom(m.Compressed ? Framing.Gunzip(m.Payload) : m.Payload)).ToList();

    public T Single<T>(MessageParser<T> parser)
        where T : IMessage<T>
    {
        Assert.That(Status, Is.EqualTo(Code.Ok), Describe());
        var messages = Messages(parser);
        Assert.That(messages, Has.Count.EqualTo(1), Describe());
        return messages[0];
    }

    /// <summary>For assertion messages: what the server said.</summary>
    public string Describe() =>
        $"HTTP {HttpStatus}, grpc-status {(Status is { } s ? $"{(int)s} {s}" : "none")}, grpc-message '{Message}', headers [{string.Join("; ", Headers.Select(h => h.Key + "=" + h.Value))}], trailers [{string.Join("; ", Trailers.Select(h => h.Key + "=" + h.Value))}], {Body.Length} body bytes";

    private static string Pad(string base64) => base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');
}
