using CredBroker.Server.Metrics;
using CredBroker.Server.Rpc;
using StatusCode = Grpc.Core.StatusCode;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Json;

namespace CredBroker.Server.Hosting;

/// <summary>Logging (Serilog.AspNetCore) and telemetry (OpenTelemetry: Prometheus text, OTLP) as ASP.NET Core users expect.</summary>
public static class Telemetry
{
    /// <summary>
    /// Serilog as the logging provider. Defaults: Information, Microsoft.* at Warning, console — one
    /// JSON object per line in production (Serilog's JsonFormatter with the rendered message), plain
    /// text in dev mode. A <c>Serilog</c> configuration section (Serilog.Settings.Configuration)
    /// overrides levels, sinks and enrichers.
    /// </summary>
    public static void AddBrokerLogging(WebApplicationBuilder builder, bool dev)
    {
        builder.Logging.ClearProviders();
        builder.Services.AddSerilog(logger =>
        {
            logger.MinimumLevel.Information()
                .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
                .MinimumLevel.Override("Grpc", LogEventLevel.Warning)
                .Enrich.FromLogContext();
            if (builder.Configuration.GetSection("Serilog").Exists())
            {
                logger.ReadFrom.Configuration(builder.Configuration);
            }

            if (!builder.Configuration.GetSection("Serilog:WriteTo").Exists())
            {
                if (dev)
                {
                    logger.WriteTo.Console();
                }
                else
                {
                    logger.WriteTo.Console(new JsonFormatter(renderMessage: true));
                }
            }
        });
    }

    /// <summary>
    /// One log line per request (gRPC call or HTTP request) with the gRPC status the call ended
    /// with and the peer; calls that end OK (and 2xx HTTP requests) log at Debug, so the mint path
    /// does not flood the log; refusals (and /readyz answering 503) at Information; failures inside
    /// the broker at Error. Never metadata: it carries credentials.
    /// </summary>
    public static void UseBrokerRequestLogging(WebApplication app) =>
        app.UseSerilogRequestLogging(o =>
        {
            o.MessageTemplate = "{RequestMethod} {RequestPath} → {GrpcStatus} (HTTP {StatusCode}) in {Elapsed:0.0} ms from {Peer}";
            o.EnrichDiagnosticContext = (diagnostics, http) =>
            {
                diagnostics.Set("GrpcStatus", CallOutcome.Of(http)?.ToString() ?? "-");
                diagnostics.Set("Peer", CallContextExtensions.RemoteEndpoint(http));
            };
            o.GetLevel = (http, _, error) => error is not null ? LogEventLevel.Error
                : CallOutcome.Of(http) is { } code ? code switch
                {
                    StatusCode.OK => LogEventLevel.Debug,
                    StatusCode.Internal or StatusCode.Unknown or StatusCode.DataLoss => LogEventLevel.Error,
                    _ => LogEventLevel.Information,
                }
                // Plain HTTP: /readyz answering 503 is a probe result, not a failure of the broker.
                : http.Response.StatusCode >= 500 && http.Request.Path != "/readyz" ? LogEventLevel.Error
                : http.Response.StatusCode >= 400 ? LogEventLevel.Information
                : LogEventLevel.Debug;
        });

    /// <summary>
    /// The broker's meter exported as Prometheus text (served at /metrics on the HTTP listener) and,
    /// when an OTLP endpoint is configured, metrics and traces over OTLP: an Activity per request
    /// (ASP.NET Core instrumentation; a gRPC call is one request) and per lease store call.
    /// </summary>
    public static void AddBrokerTelemetry(IServiceCollection services, BrokerOptions.TelemetryOptions options)
    {
        var otlp = options.OtlpEndpoint is { Length: > 0 } endpoint ? new Uri(endpoint)
            : Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 } fromEnvironment ? new Uri(fromEnvironment)
            : null;
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName))
            .WithMetrics(metrics =>
            {
                // Series keep their own names and labels (no otel_scope_* labels), and every scrape is fresh.
                metrics.AddMeter(BrokerMetrics.MeterName).AddPrometheusExporter(o =>
                {
                    o.ScopeInfoEnabled = false;
                    o.ScrapeResponseCacheDurationMilliseconds = 0;
                });
                if (otlp is not null)
                {
                    metrics.AddRuntimeInstrumentation().AddOtlpExporter(o => o.Endpoint = otlp);
                }
            });
        if (otlp is not null)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(BrokerMetrics.ActivitySourceName)
                .AddAspNetCoreInstrumentation()
                .AddOtlpExporter(o => o.Endpoint = otlp));
        }
    }

    /// <summary>/metrics: Prometheus text exposition (version 0.0.4) on the HTTP listener only.</summary>
    public static void MapMetrics(WebApplication app) =>
        app.MapPrometheusScrapingEndpoint("/metrics").WithMetadata(PlainHttpEndpoint.Instance);
}
