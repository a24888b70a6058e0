using CredBroker.Core.Agents;
using CredBroker.Server.Hosting;

try
{
    var app = BrokerApp.Create(args);
    await app.RunAsync();
    return 0;
}
catch (Exception e) when (e is StartupException or AgentFileException or InvalidOperationException or IOException)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}
