using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using CredBroker.Contracts.V1;
using Google.Protobuf;

namespace CredBroker.Bench.Mint;

/// <summary>The outcome of one call as the load client judges it: OK only with HTTP 200, grpc-status 0 and a well-formed answer.</summary>
internal readonly record struct CallOutcome(bool Ok, string? Failure, string? LeaseId)
{
    public static CallOutcome Fail(string failure) => new(false, failure, null);
}

/// <summary>
/// BeginTask and CompleteTask as raw gRPC-over-HTTP/2 requests on HttpClient: pre-built headers,
/// a length-prefixed body, and a strict reading of the answer (status from the trailers, or from
/// the headers for a trailers-only answer). Lean on purpose: the load client must cost the machine
/// far less than the broker it drives.
/// </summary>
internal static class MintCalls
{
    public const string BeginTaskPath = "/credbroker.v1.AgentBroker/BeginTask";
    public const string CompleteTaskPath = "/credbroker.v1.AgentBroker/CompleteTask";
    private static readonly MediaTypeHeaderValue GrpcContentType = new("application/grpc");

    public static BeginTaskRequest BeginRequest(string taskId) => new()
    {
        TaskId = taskId,
        Scopes = { MintSetup.Scope },
        Audience = MintSetup.Audience,
    };

    /// <summary>A gRPC message frame: uncompressed flag, 4-byte big-endian length, the message.</summary>
    public static byte[] Frame(IMessage message)
    {
        var size = message.CalculateSize();
        var frame = new byte[5 + size];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)size);
        message.WriteTo(frame.AsSpan(5));
        return frame;
    }

    /// <param name="beginTask">The BeginTask method's URI on the target (built once per run, not per call).</param>
    public static async Task<CallOutcome> BeginTaskAsync(HttpClient http, Uri beginTask, string authorization, string taskId, CancellationToken cancellationToken)
    {
        var (failure, body) = await SendAsync(http, beginTask, authorization, Frame(BeginRequest(taskId)), cancellationToken);
        if (failure is not null)
        {
            return CallOutcome.Fail(failure);
        }

        var response = BeginTaskResponse.Parser.ParseFrom(body.Span);
        return response.AccessToken.Length > 0 && response.LeaseId.Length > 0
            ? new CallOutcome(true, null, response.LeaseId)
            : CallOutcome.Fail("BeginTask answered OK without a token or lease id");
    }

    public static async Task<CallOutcome> CompleteTaskAsync(HttpClient http, Uri completeTask, string authorization, string leaseId, CancellationToken cancellationToken)
    {
        var (failure, body) = await SendAsync(http, completeTask, authorization, Frame(new CompleteTaskRequest { LeaseId = leaseId }), cancellationToken);
        if (failure is not null)
        {
            return CallOutcome.Fail(failure);
        }

        var state = CompleteTaskResponse.Parser.ParseFrom(body.Span).State;
        return state == "completed" ? new CallOutcome(true, null, leaseId) : CallOutcome.Fail($"CompleteTask left the lease '{state}'");
    }

    /// <summary>One unary call; the failure text names what went wrong (transport, HTTP status, grpc-status and message, framing).</summary>
    public static async Task<(string? Failure, ReadOnlyMemory<byte> Message)> SendAsync(
        HttpClient http, Uri uri, string authorization, byte[] frame, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, uri)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        request.Content.Headers.ContentType = GrpcContentType;
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.TryAddWithoutValidation("authorization", authorization);
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return ($"HTTP {(int)response.StatusCode}", default);
            }

            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            var status = Header(response.TrailingHeaders, "grpc-status") ?? Header(response.Headers, "grpc-status");
            if (status is null)
            {
                return ("no grpc-status in the trailers", default);
            }

            if (status != "0")
            {
                var message = Header(response.TrailingHeaders, "grpc-message") ?? Header(response.Headers, "grpc-message") ?? string.Empty;
                return ($"grpc-status {status}: {Uri.UnescapeDataString(message)}", default);
            }

            if (body.Length < 5 || body[0] != 0 || BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1)) != body.Length - 5)
            {
                return ("the response is not one uncompressed gRPC message", default);
            }

            return (null, body.AsMemory(5));
        }
        catch (Exception e) when (e is HttpRequestException or IOException or InvalidProtocolBufferException)
        {
            return ($"{e.GetType().Name}: {e.Message}", default);
        }
    }

    private static string? Header(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;
}
