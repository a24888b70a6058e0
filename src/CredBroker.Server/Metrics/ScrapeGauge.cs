using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace CredBroker.Server.Metrics;

internal sealed class ScrapeGauge(string name, string help, Func<CancellationToken, Task<double>> read) : Metric(name, help, "gauge", [])
{
    protected override async Task RenderSamplesAsync(StringBuilder text, CancellationToken cancellationToken)
    {
        try
        {
            text.Append(Name).Append(' ').Append(Number(await read(cancellationToken))).Append('\n');
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The sample is absent; /readyz says why.
        }
    }
}
