using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace CredBroker.Grpc.Tests;

/// <summary>A gRPC request built byte by byte, to send what no well-behaved client would.</summary>
internal sealed record RawCall(string Path, byte[] Body)
{
    public string Method { get; init; } = "POST";

    public string ContentType { get; init; } = "application/grpc";

    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    public static byte[] Frame(IMessage message, byte flag = 0) => Frame(message.ToByteArray(), flag);

    public static byte[] Frame(byte[] payload, byte flag = 0, int? declaredLength = null)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), (uint)(declaredLength ?? payload.Length));
        payload.CopyTo(frame.AsSpan(5));
        return frame;
    }

    public async Task<RawResponse> SendAsync(HttpClient http, Uri server, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(new HttpMethod(Method), new Uri(server.GetLeftPart(UriPartial.Authority) + Path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(Body),
        };
        request.Content.Headers.TryAddWithoutValidation("content-type", ContentType);
        request.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (name, value) in Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await http.SendAsync(request, cancellationToken);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        return new RawResponse((int)response.StatusCode, Flatten(response.Headers, response.Content.Headers), Flatten(response.TrailingHeaders), body);
    }

    private static Dictionary<string, string> Flatten(params HttpHeaders[] headers) =>
        headers.SelectMany(h => h.NonValidated).ToDictionary(h => h.Key.ToLowerInvariant(), h => string.Join(",", h.Value));
}

internal sealed record RawResponse(int HttpStatus, IReadOnlyDictionary<string, string> Headers, IReadOnlyDictionary<string, string> Trailers, byte[] Body)
{
    /// <summary>The grpc-status from the trailers, or from the headers of a trailers-only response.</summary>
    public StatusCode? Status =>
        (Trailers.TryGetValue("grpc-status", out var s) || Headers.TryGetValue("grpc-status", out s)) ? (StatusCode)int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : null;

    public bool TrailersOnly => Headers.ContainsKey("grpc-status") && Body.Length == 0;

    public string Message => Trailers.GetValueOrDefault("grpc-message") ?? Headers.GetValueOrDefault("grpc-message") ?? string.Empty;
}
