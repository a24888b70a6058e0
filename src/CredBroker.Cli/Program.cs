using CredBroker.Cli;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl-C ends a follow cleanly; the process exits with the command's code.
    e.Cancel = true;
    cancel.Cancel();
};

return await new CliApp(Console.Out, Console.Error).InvokeAsync(args, cancel.Token);
