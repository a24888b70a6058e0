using System.Globalization;

namespace CredBroker.Bench.Mint;

/// <summary>
/// A process's CPU time from /proc/&lt;pid&gt;/stat (utime + stime, all threads), so the benchmark
/// can say how many cores the broker, Redis and the load client each used over the same window.
/// </summary>
internal static class ProcessCpu
{
    // USER_HZ is 100 on every Linux ABI .NET runs on; `getconf CLK_TCK` confirms it in run.sh.
    private const double TicksPerSecond = 100;

    /// <summary>CPU seconds used so far by <paramref name="pid"/>, or null where /proc does not have it.</summary>
    public static double? Seconds(int pid) => Split(pid) is { } split ? split.User + split.System : null;

    /// <summary>User and kernel CPU seconds used so far by <paramref name="pid"/>.</summary>
    public static (double User, double System)? Split(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }

        // The command name (field 2) may contain spaces; the fields after its closing ')' are fixed.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state); utime is field 14, stime field 15.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) / TicksPerSecond, long.Parse(fields[12], CultureInfo.InvariantCulture) / TicksPerSecond);
    }
}
