using System.Globalization;
using Grpc.AspNetCore.Server;
using Grpc.Core;

namespace CredBroker.Server.Rpc;

/// <summary>
/// The server side of deadlines, before Grpc.AspNetCore reads <c>grpc-timeout</c>: a unary call's
/// deadline is capped at <see cref="MaxUnary"/>, which also applies when the client sent none or a
/// malformed one; a streaming call keeps the client's deadline unless it is beyond
/// <see cref="MaxStreaming"/> (a client asking for years means "no deadline", and such values
/// must never reach a timer). Every deadline the server runs is therefore bounded.
/// </summary>
public sealed class GrpcDeadlines(TimeSpan? maxUnary, TimeSpan maxStreaming)
{
    public const string Header = "grpc-timeout";

    public TimeSpan? MaxUnary => maxUnary;

    public TimeSpan MaxStreaming => maxStreaming;

    public Task InvokeAsync(HttpContext http, Func<Task> next)
    {
        if (http.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is { } grpc)
        {
            var requested = TryParse(http.Request.Headers[Header].ToString());
            var effective = grpc.Method.Type == MethodType.Unary && maxUnary is { } cap
                ? (TimeSpan?)(requested is { } r && r < cap ? r : cap)
                : (requested is { } s && s <= maxStreaming ? s : null);
            if (effective is { } timeout)
            {
                http.Request.Headers[Header] = Format(timeout);
            }
            else
            {
                http.Request.Headers.Remove(Header);
            }
        }

        return next();
    }

    /// <summary>PROTOCOL-HTTP2: 1–8 ASCII digits and a unit (H M S m u n); anything else is null.</summary>
    public static TimeSpan? TryParse(string value)
    {
        if (value.Length is < 2 or > 9)
        {
            return null;
        }

        long amount = 0;
        foreach (var c in value.AsSpan(0, value.Length - 1))
        {
            if (c is < '0' or > '9')
            {
                return null;
            }

            amount = (amount * 10) + (c - '0');
        }

        return value[^1] switch
        {
            'H' => TimeSpan.FromHours(amount),
            'M' => TimeSpan.FromMinutes(amount),
            'S' => TimeSpan.FromSeconds(amount),
            'm' => TimeSpan.FromMilliseconds(amount),
            'u' => TimeSpan.FromTicks(amount * TimeSpan.TicksPerMicrosecond),
            'n' => TimeSpan.FromTicks(amount / 100),
            _ => null,
        };
    }

    /// <summary>The most precise unit whose amount fits the header's 8 digits.</summary>
    public static string Format(TimeSpan timeout)
    {
        var ticks = Math.Max(0, timeout.Ticks);
        foreach (var (unit, perUnit) in Units)
        {
            // Rounded up, and never 0: a zero grpc-timeout would mean "no deadline" to the library.
            var amount = Math.Max(1, (ticks + perUnit - 1) / perUnit);
            if (amount <= 99_999_999)
            {
                return amount.ToString(CultureInfo.InvariantCulture) + unit;
            }
        }

        return "99999999H";
    }

    private static readonly (char Unit, long Ticks)[] Units =
    [
        ('u', TimeSpan.TicksPerMicrosecond),
        ('m', TimeSpan.TicksPerMillisecond),
        ('S', TimeSpan.TicksPerSecond),
        ('M', TimeSpan.TicksPerMinute),
        ('H', TimeSpan.TicksPerHour),
    ];
}
