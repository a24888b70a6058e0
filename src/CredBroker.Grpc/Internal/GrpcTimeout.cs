using System.Globalization;

namespace CredBroker.Grpc.Internal;

/// <summary>`grpc-timeout`: at most 8 ASCII digits followed by one unit (H, M, S, m, u, n).</summary>
internal static class GrpcTimeout
{
    public static bool TryParse(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (value is null || value.Length < 2 || value.Length > 9)
        {
            return false;
        }

        var digits = value.AsSpan(0, value.Length - 1);
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        var amount = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        long? ticks = value[^1] switch
        {
            'H' => amount * TimeSpan.TicksPerHour,
            'M' => amount * TimeSpan.TicksPerMinute,
            'S' => amount * TimeSpan.TicksPerSecond,
            'm' => amount * TimeSpan.TicksPerMillisecond,
            'u' => amount * 10,
            'n' => amount / 100,
            _ => null,
        };
        if (ticks is null)
        {
            return false;
        }

        timeout = TimeSpan.FromTicks(ticks.Value);
        return true;
    }

    /// <summary>Formats a timeout with the finest unit that keeps it within 8 digits.</summary>
    public static string Format(TimeSpan timeout)
    {
        var ticks = Math.Max(0, timeout.Ticks);
        if (ticks / 10 < 100_000_000)
        {
            return (ticks / 10).ToString(CultureInfo.InvariantCulture) + "u";
        }

        var ms = ticks / TimeSpan.TicksPerMillisecond;
        if (ms < 100_000_000)
        {
            return ms.ToString(CultureInfo.InvariantCulture) + "m";
        }

        var s = ticks / TimeSpan.TicksPerSecond;
        if (s < 100_000_000)
        {
            return s.ToString(CultureInfo.InvariantCulture) + "S";
        }

        return Math.Min(99_999_999, ticks / TimeSpan.TicksPerHour).ToString(CultureInfo.InvariantCulture) + "H";
    }
}
