using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.Net.Http.Headers;

namespace CredBroker.Server.Rpc;

/// <summary>
/// Looks at the first byte of a unary or server-streaming request (the gRPC compressed flag) before
/// Grpc.AspNetCore reads it: any value but 0 or 1 is a malformed frame, answered INTERNAL here —
/// the library would throw and answer UNKNOWN "Exception was thrown by handler." and log an error
/// with a stack trace for what is only bad client input. Nothing is consumed: the library reads
/// the same bytes afterwards.
/// </summary>
public static class GrpcFrameCheck
{
    public static async Task InvokeAsync(HttpContext http, Func<Task> next)
    {
        if (http.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is { Method.Type: MethodType.Unary or MethodType.ServerStreaming })
        {
            var reader = http.Request.BodyReader;
            var read = await reader.ReadAsync(http.RequestAborted);
            var flag = read.Buffer.IsEmpty ? (byte)0 : read.Buffer.FirstSpan[0];
            reader.AdvanceTo(read.Buffer.Start);
            if (flag > 1)
            {
                // A trailers-only answer: the status travels in the response headers.
                http.Response.StatusCode = StatusCodes.Status200OK;
                http.Response.ContentType = "application/grpc";
                http.Response.Headers["grpc-status"] = ((int)StatusCode.Internal).ToString(System.Globalization.CultureInfo.InvariantCulture);
                http.Response.Headers["grpc-message"] = $"Malformed gRPC frame: compressed flag {flag} (0 or 1 expected).";
                await http.Response.CompleteAsync();
                return;
            }
        }

        await next();
    }
}
