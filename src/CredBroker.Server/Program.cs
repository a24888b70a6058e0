using CredBroker.Core.Policy.File;
using CredBroker.Server.Hosting;

try
{
    var app = BrokerApp.Create(args);
    return await BrokerApp.RunAsync(app);
}
catch (Exception e) when (e is StartupException or PolicyFileException or InvalidOperationException or IOException)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}
