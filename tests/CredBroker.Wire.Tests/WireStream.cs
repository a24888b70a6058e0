using System.Buffers.Binary;
using Google.Protobuf;

namespace CredBroker.Wire.Tests;

/// <summary>A server-streaming call read message by message as the frames arrive; disposing it cancels the stream.</summary>
public sealed class WireStream : IDisposable
{
    private readonly HttpRequestMessage _request;
    private readonly HttpResponseMessage _response;
    private readonly Stream _body;

    private WireStream(HttpRequestMessage request, HttpResponseMessage response, Stream body)
    {
        _request = request;
        _response = response;
        _body = body;
    }

    public int HttpStatus => (int)_response.StatusCode;

    public IReadOnlyDictionary<string, string> Headers => WireResponse.Flatten(_response.Headers, _response.Content.Headers);

    /// <summary>The grpc-status of a trailers-only answer (an immediate refusal), or null while the stream is open.</summary>
    public Code? TrailersOnlyStatus =>
        Headers.TryGetValue("grpc-status", out var s) ? (Code)int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : null;

    public string Describe() =>
        $"HTTP {HttpStatus}, headers [{string.Join("; ", Headers.Select(h => h.Key + "=" + h.Value))}]";

    public static async Task<WireStream> OpenAsync(HttpClient http, Uri listener, WireCall call, CancellationToken cancellationToken)
    {
        var request = call.ToRequest(listener);
        try
        {
            var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            return new WireStream(request, response, await response.Content.ReadAsStreamAsync(cancellationToken));
        }
        catch
        {
            request.Dispose();
            throw;
        }
    }

    /// <summary>The next message, or null when the server ended the stream.</summary>
    public async Task<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
        where T : class, IMessage<T>
    {
        var prefix = new byte[5];
        var read = await _body.ReadAtLeastAsync(prefix, 5, throwOnEndOfStream: false, cancellationToken);
        if (read == 0)
        {
            return null;
        }

        Assert.That(read, Is.EqualTo(5), "a message prefix is cut short");
        Assert.That(prefix[0], Is.EqualTo(0), "no response compression was offered by the client");
        var payload = new byte[BinaryPrimitives.ReadUInt32BigEndian(prefix.AsSpan(1))];
        await _body.ReadExactlyAsync(payload, cancellationToken);
        return parser.ParseFrom(payload);
    }

    public void Dispose()
    {
        _body.Dispose();
        _response.Dispose();
        _request.Dispose();
    }
}
