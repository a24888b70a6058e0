using System.Globalization;

namespace CredBroker.Core.Leases;

/// <summary>A position in one shard's revocation log, shaped like a Redis stream id (<c>ms-seq</c>).</summary>
public readonly record struct LogPosition(ulong Major, ulong Minor) : IComparable<LogPosition>
{
    public static LogPosition Start { get; } = new(0, 0);

    public int CompareTo(LogPosition other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public static bool operator <(LogPosition a, LogPosition b) => a.CompareTo(b) < 0;

    public static bool operator >(LogPosition a, LogPosition b) => a.CompareTo(b) > 0;

    public static bool operator <=(LogPosition a, LogPosition b) => a.CompareTo(b) <= 0;

    public static bool operator >=(LogPosition a, LogPosition b) => a.CompareTo(b) >= 0;

    public override string ToString() =>
        Major.ToString(CultureInfo.InvariantCulture) + "-" + Minor.ToString(CultureInfo.InvariantCulture);

    /// <summary>Strict: two canonical unsigned decimals (no sign, no leading zeros) joined by '-'.</summary>
    public static bool TryParse(string? text, out LogPosition position)
    {
        position = default;
        var dash = text?.IndexOf('-', StringComparison.Ordinal) ?? -1;
        if (text is null || dash < 0
            || !TryParseCanonical(text.AsSpan(0, dash), out var major) || !TryParseCanonical(text.AsSpan(dash + 1), out var minor))
        {
            return false;
        }

        position = new LogPosition(major, minor);
        return true;
    }

    public static LogPosition Parse(string text) =>
        TryParse(text, out var p) ? p : throw new FormatException($"'{text}' is not a log position.");

    private static bool TryParseCanonical(ReadOnlySpan<char> digits, out ulong value)
    {
        value = 0;
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }

        return digits.Length is > 0 and <= 20 && (digits.Length == 1 || digits[0] != '0')
            && ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}

/// <summary>
/// Where a revocation feed reader stands: one <see cref="LogPosition"/> per shard
/// (<see cref="LeaseIds.ShardCount"/>). Serialises to an opaque ASCII string
/// (<c>v1.</c> + the positions joined by '.'); <see cref="TryParse"/> rejects anything else.
/// </summary>
public sealed class RevocationCursor : IEquatable<RevocationCursor>
{
    private const string Prefix = "v1.";
    private readonly LogPosition[] _positions;

    public RevocationCursor(IReadOnlyList<LogPosition> positions)
    {
        if (positions.Count != LeaseIds.ShardCount)
        {
            throw new ArgumentException($"A cursor has exactly {LeaseIds.ShardCount} positions.", nameof(positions));
        }

        _positions = [.. positions];
    }

    /// <summary>Before every event ever appended (unlike a null cursor, a trimmed log makes it too old).</summary>
    public static RevocationCursor Start { get; } = new(Enumerable.Repeat(LogPosition.Start, LeaseIds.ShardCount).ToArray());

    public IReadOnlyList<LogPosition> Positions => _positions;

    public LogPosition this[int shard] => _positions[shard];

    public RevocationCursor With(int shard, LogPosition position)
    {
        var positions = (LogPosition[])_positions.Clone();
        positions[shard] = position;
        return new RevocationCursor(positions);
    }

    public override string ToString() => Prefix + string.Join('.', _positions);

    public static bool TryParse(string? text, out RevocationCursor cursor)
    {
        cursor = Start;
        if (text is null || text.Length > 1024 || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var parts = text[Prefix.Length..].Split('.');
        if (parts.Length != LeaseIds.ShardCount)
        {
            return false;
        }

        var positions = new LogPosition[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!LogPosition.TryParse(parts[i], out positions[i]))
            {
                return false;
            }
        }

        cursor = new RevocationCursor(positions);
        return true;
    }

    public bool Equals(RevocationCursor? other) => other is not null && _positions.AsSpan().SequenceEqual(other._positions);

    public override bool Equals(object? obj) => Equals(obj as RevocationCursor);

    public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);
}
