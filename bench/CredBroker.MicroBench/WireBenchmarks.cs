using BenchmarkDotNet.Attributes;
using CredBroker.Contracts.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.MicroBench;

/// <summary>Protobuf encode/decode of the BeginTask messages as the broker sees them (request in, response with a ~600-byte token out).</summary>
[MemoryDiagnoser]
public class WireBenchmarks
{
    private BeginTaskRequest _request = null!;
    private BeginTaskResponse _response = null!;
    private byte[] _requestBytes = null!;
    private byte[] _responseBytes = null!;

    [GlobalSetup]
    public void Setup()
    {
        _request = new BeginTaskRequest { TaskId = "0f3c2b1a-task-000123", Scopes = { "tickets:read" }, Audience = "tickets-api", Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) };
        _response = new BeginTaskResponse
        {
            LeaseId = "ls_07_4j2b1c0d9e8f7a6b5c4d3e2f",
            AccessToken = new string('a', 620),
            TokenId = "Zq1cV0k3bJm8sX2nR5tY7w",
            TokenExpiresAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(5)),
            LeaseDeadline = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(10)),
            GrantedScopes = { "tickets:read" },
        };
        _requestBytes = _request.ToByteArray();
        _responseBytes = _response.ToByteArray();
    }

    [Benchmark(Description = "decode BeginTaskRequest")]
    public BeginTaskRequest DecodeRequest() => BeginTaskRequest.Parser.ParseFrom(_requestBytes);

    [Benchmark(Description = "encode BeginTaskResponse")]
    public byte[] EncodeResponse() => _response.ToByteArray();

    [Benchmark(Description = "encode BeginTaskRequest")]
    public byte[] EncodeRequest() => _request.ToByteArray();

    [Benchmark(Description = "decode BeginTaskResponse")]
    public BeginTaskResponse DecodeResponse() => BeginTaskResponse.Parser.ParseFrom(_responseBytes);
}
