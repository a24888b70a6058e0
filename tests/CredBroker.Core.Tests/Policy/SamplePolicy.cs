using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;

namespace CredBroker.Core.Tests.Policy;

/// <summary>samples/policy/policy.yaml, found from the test directory upwards.</summary>
internal static class SamplePolicy
{
    private static readonly Lazy<string> LazyPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "samples", "policy", "policy.yaml");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("samples/policy/policy.yaml not found above " + AppContext.BaseDirectory);
    });

    public static string Path_ => LazyPath.Value;

    public static PolicyDocument Load() => PolicyFile.Load(LazyPath.Value);
}
