namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class TelemetryOptions
    {
        /// <summary>
        /// OTLP endpoint (e.g. http://otel-collector:4317) for traces and metrics; unset = the standard
        /// OTEL_EXPORTER_OTLP_ENDPOINT environment variable, and when neither is set nothing is exported
        /// over OTLP (Prometheus text at /metrics is always served).
        /// </summary>
        public string? OtlpEndpoint { get; set; }

        /// <summary>The service.name resource attribute.</summary>
        public string ServiceName { get; set; } = "credbroker";
    }
}
