using System.Buffers.Binary;
using CredBroker.Testing.Grpc;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Reflection.V1;

namespace CredBroker.Grpc.Tests;

/// <summary>Server reflection answered over a real bidi stream (one request per message, answers in order).</summary>
[TestFixture]
public sealed class ReflectionTests : InteropServerFixture
{
    [TestCase("grpc.reflection.v1.ServerReflection")]
    [TestCase("grpc.reflection.v1alpha.ServerReflection")]
    public async Task ListServices_NamesEveryRegisteredService(string service)
    {
        var answers = await AskAsync(service, new ServerReflectionRequest { ListServices = "*" });
        Assert.That(answers.Single().ListServicesResponse.Service.Select(s => s.Name), Is.EquivalentTo(new[]
        {
            InteropServer.Service, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
        }));
    }

    [Test]
    public async Task SeveralRequestsOnOneStream_AreAnsweredInOrder_WithDependencies()
    {
        var answers = await AskAsync("grpc.reflection.v1.ServerReflection",
            new ServerReflectionRequest { FileContainingSymbol = "credbroker.testing.v1.Interop.Echo" },
            new ServerReflectionRequest { FileByFilename = "grpc/health/v1/health.proto" },
            new ServerReflectionRequest { FileContainingSymbol = "no.such.Symbol" },
            new ServerReflectionRequest { FileContainingSymbol = "grpc.health.v1.HealthCheckResponse.ServingStatus" });

        Assert.That(answers, Has.Count.EqualTo(4));
        var interop = answers[0].FileDescriptorResponse.FileDescriptorProto.Select(b => FileDescriptorProto.Parser.ParseFrom(b)).ToList();
        Assert.That(interop[0].Name, Is.EqualTo("interop.proto"));
        Assert.That(interop[0].Service.Single().Method.Select(m => m.Name), Is.EqualTo(new[] { "Echo", "Count", "Stats" }));
        Assert.That(FileDescriptorProto.Parser.ParseFrom(answers[1].FileDescriptorResponse.FileDescriptorProto[0]).Name, Is.EqualTo("grpc/health/v1/health.proto"));
        Assert.That(answers[2].ErrorResponse.ErrorCode, Is.EqualTo((int)StatusCode.NotFound));
        Assert.That(FileDescriptorProto.Parser.ParseFrom(answers[3].FileDescriptorResponse.FileDescriptorProto[0]).Name, Is.EqualTo("grpc/health/v1/health.proto"));
    }

    private async Task<List<ServerReflectionResponse>> AskAsync(string service, params ServerReflectionRequest[] requests)
    {
        var body = requests.SelectMany(r => RawCall.Frame(r)).ToArray();
        var response = await new RawCall($"/{service}/ServerReflectionInfo", body).SendAsync(Http, Server.H2c);
        Assert.That(response.Status, Is.EqualTo(StatusCode.OK), response.Message);
        var answers = new List<ServerReflectionResponse>();
        for (var offset = 0; offset < response.Body.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(response.Body.AsSpan(offset + 1, 4));
            answers.Add(ServerReflectionResponse.Parser.ParseFrom(response.Body.AsSpan(offset + 5, length)));
            offset += 5 + length;
        }

        return answers;
    }
}
