using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CredBroker.Server.Metrics;

public abstract class Metric(string name, string help, string type, string[] labels)
{
    public string Name { get; } = name;

    protected string[] Labels { get; } = labels;

    internal async Task RenderAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        text.Append("# HELP ").Append(Name).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        text.Append("# TYPE ").Append(Name).Append(' ').Append(type).Append('\n');
        await RenderSamplesAsync(text, cancellationToken);
    }

    protected abstract Task RenderSamplesAsync(StringBuilder text, CancellationToken cancellationToken);

    protected string Key(string[] values)
    {
        if (values.Length != Labels.Length)
        {
            throw new ArgumentException($"{Name} takes labels ({string.Join(", ", Labels)}).", nameof(values));
        }

        return string.Join('\u001f', values);
    }

    protected string LabelText(string key, string? extraName = null, string? extraValue = null)
    {
        var values = Labels.Length == 0 ? [] : key.Split('\u001f');
        var pairs = Labels.Select((l, i) => $"{l}=\"{Escape(values[i])}\"").ToList();
        if (extraName is not null)
        {
            pairs.Add($"{extraName}=\"{Escape(extraValue!)}\"");
        }

        return pairs.Count == 0 ? "" : "{" + string.Join(',', pairs) + "}";
    }

    protected static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf" : double.IsNegativeInfinity(value) ? "-Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
