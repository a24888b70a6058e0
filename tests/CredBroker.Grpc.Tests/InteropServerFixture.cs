using CredBroker.Testing.Grpc;

namespace CredBroker.Grpc.Tests;

/// <summary>One <see cref="InteropServer"/> and one gRPC HttpClient per fixture.</summary>
public abstract class InteropServerFixture
{
    protected InteropServer Server { get; private set; } = null!;

    protected HttpClient Http { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartServerAsync()
    {
        Server = await InteropServer.StartAsync();
        Http = GrpcClient.CreateHttpClient();
    }

    [OneTimeTearDown]
    public async Task StopServerAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}
