using System.CommandLine;

namespace CredBroker.Cli.Commands;

/// <summary><c>keys rotate</c>: schedule the next signing key (RotateSigningKey) and show the resulting schedule.</summary>
internal static class KeyCommands
{
    public static Command Keys(CliApp app)
    {
        var kid = new Option<string?>("--kid") { Description = "The kid of a mounted key file to rotate to (default: the first mounted key this broker never used)." };
        var reason = new Option<string?>("--reason", "-r") { Description = "Why (recorded with your identity in the audit trail; at most 256 characters)." };
        var rotate = new Command("rotate", "Publish the next signing key now and sign with it after the publish lead; the old key stays published until its tokens expire.")
        {
            kid, reason,
        };
        rotate.SetAction((parse, ct) => app.RunAsync(parse, async (client, output) =>
        {
            var response = await client.RotateSigningKeyAsync(parse.GetValue(kid) ?? "", parse.GetValue(reason) ?? "", ct);
            if (output.Json)
            {
                output.Message(response);
                return ExitCodes.Ok;
            }

            output.Line($"rotating to {response.Kid}: it signs from {Output.Time(response.ActivateAt)}");
            output.Table(["KID", "PHASE", "PUBLISH", "ACTIVATE", "RETIRE", "REMOVE", "MOUNTED"],
                response.Keys.Select(k => (IReadOnlyList<string>)[
                    k.Kid, k.Phase, Output.Time(k.PublishAt), Output.Time(k.ActivateAt), Output.Time(k.RetireAt), Output.Time(k.RemoveAt), k.Mounted ? "yes" : "no"]));
            return ExitCodes.Ok;
        }));

        return new Command("keys", "Rotate the broker's token signing key.") { rotate };
    }
}
