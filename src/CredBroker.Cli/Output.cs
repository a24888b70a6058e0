using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Cli;

/// <summary>Where a command writes: human tables by default, proto3 JSON with --json. Errors go to stderr.</summary>
internal sealed class Output(TextWriter stdout, TextWriter stderr, bool json)
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    public bool Json => json;

    public TextWriter Out => stdout;

    public TextWriter Error => stderr;

    public static string ToJson(IMessage message) => Formatter.Format(message);

    public void Message(IMessage message) => stdout.WriteLine(ToJson(message));

    public void Messages(IEnumerable<IMessage> messages) => stdout.WriteLine("[" + string.Join(",", messages.Select(ToJson)) + "]");

    public void Line(string text) => stdout.WriteLine(text);

    /// <summary>
    /// A listing answered with partial results (a lost Redis Cluster master): says on stderr which lease
    /// shards could not be read and that <paramref name="what"/> of the agents on them are missing.
    /// </summary>
    public void Incomplete(IReadOnlyCollection<int> unreachableShards, string what)
    {
        if (unreachableShards.Count > 0)
        {
            stderr.WriteLine(
                $"credbroker: warning: the list is incomplete: lease shards {string.Join(", ", unreachableShards.Order())} could not be read (a Redis master is unreachable); "
                + $"{what} of the agents on them are missing. List again once Redis is back.");
        }
    }

    /// <summary>A left-aligned table with a header row; cells are clipped to 60 characters.</summary>
    public void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.Select(r => r.Select(Clip).ToList()).ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToList();
        stdout.WriteLine(Row(headers, widths));
        foreach (var row in all)
        {
            stdout.WriteLine(Row(row, widths));
        }
    }

    /// <summary>Key/value pairs, one per line, keys aligned.</summary>
    public void Fields(IEnumerable<(string Key, string Value)> fields)
    {
        var list = fields.ToList();
        var width = list.Max(f => f.Key.Length);
        foreach (var (key, value) in list)
        {
            stdout.WriteLine(key.PadRight(width) + "  " + value);
        }
    }

    public static string Time(Timestamp? timestamp) =>
        timestamp is null ? "-" : timestamp.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Row(IEnumerable<string> cells, List<int> widths)
    {
        var line = new StringBuilder();
        var i = 0;
        foreach (var cell in cells)
        {
            line.Append(i == widths.Count - 1 ? cell : cell.PadRight(widths[i] + 2));
            i++;
        }

        return line.ToString().TrimEnd();
    }

    private static string Clip(string value)
    {
        var flat = value.ReplaceLineEndings(" ");
        return flat.Length <= 60 ? (flat.Length == 0 ? "-" : flat) : flat[..59] + "…";
    }
}
