using Microsoft.Extensions.Options;

namespace CredBroker.Server.Hosting;

/// <summary>
/// Settings that cannot work, each failure naming the setting: in production everything
/// <see cref="BrokerOptions.ProductionProblems"/> checks, in dev mode the delegation settings
/// (dev mode needs nothing else: it generates what it lacks).
/// </summary>
public sealed class BrokerOptionsValidator : IValidateOptions<BrokerOptions>
{
    public ValidateOptionsResult Validate(string? name, BrokerOptions options)
    {
        List<string> problems = [.. options.Dev ? options.DelegationProblems().Concat(options.Ssf.Problems()) : options.ProductionProblems(), .. options.DpopProblems(), .. options.ConsoleProblems()];
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
