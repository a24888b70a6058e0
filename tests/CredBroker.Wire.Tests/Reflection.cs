using Google.Protobuf;
using Google.Protobuf.Reflection;
using V1 = Grpc.Reflection.V1;
using V1Alpha = Grpc.Reflection.V1Alpha;

namespace CredBroker.Wire.Tests;

/// <summary>Server reflection over the raw harness: one request, half-close, read the answer (v1 and v1alpha share the wire format).</summary>
public static class Reflection
{
    public static async Task<List<string>> ListServicesAsync(HttpClient http, Uri listener, string path, CancellationToken cancellationToken)
    {
        if (path == WireTest.ReflectionV1Alpha)
        {
            var alpha = await AskAsync(http, listener, path, new V1Alpha.ServerReflectionRequest { ListServices = "*" }, cancellationToken);
            return V1Alpha.ServerReflectionResponse.Parser.ParseFrom(alpha).ListServicesResponse.Service.Select(s => s.Name).ToList();
        }

        var v1 = await AskAsync(http, listener, path, new V1.ServerReflectionRequest { ListServices = "*" }, cancellationToken);
        return V1.ServerReflectionResponse.Parser.ParseFrom(v1).ListServicesResponse.Service.Select(s => s.Name).ToList();
    }

    /// <summary>FileContainingSymbol over v1: the files that came back, or the error the server put in the response.</summary>
    public static async Task<V1.ServerReflectionResponse> FileContainingSymbolAsync(HttpClient http, Uri listener, string symbol, CancellationToken cancellationToken)
    {
        var bytes = await AskAsync(http, listener, WireTest.ReflectionV1, new V1.ServerReflectionRequest { FileContainingSymbol = symbol }, cancellationToken);
        return V1.ServerReflectionResponse.Parser.ParseFrom(bytes);
    }

    public static IEnumerable<FileDescriptorProto> Files(V1.ServerReflectionResponse response) =>
        response.FileDescriptorResponse is { } files ? files.FileDescriptorProto.Select(FileDescriptorProto.Parser.ParseFrom) : [];

    private static async Task<byte[]> AskAsync(HttpClient http, Uri listener, string path, IMessage request, CancellationToken cancellationToken)
    {
        var response = await new WireCall(path, Framing.Frame(request)).SendAsync(http, listener, cancellationToken);
        Assert.That(response.HttpStatus, Is.EqualTo(200), response.Describe());
        Assert.That(response.Status, Is.EqualTo(Code.Ok), response.Describe());
        var messages = Framing.Split(response.Body);
        Assert.That(messages, Has.Count.EqualTo(1), response.Describe());
        Assert.That(messages[0].Compressed, Is.False);
        return messages[0].Payload;
    }
}
