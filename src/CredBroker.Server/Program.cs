using CredBroker.Core.Policy.File;
using CredBroker.Server.Hosting;

try
{
    var app = BrokerApp.Create(args);
    await app.RunAsync();
    return 0;
}
catch (Exception e) when (e is StartupException or PolicyFileException or InvalidOperationException or IOException)
{
    await Console.Error.WriteLineAsync(e.Message);
    return 2;
}
