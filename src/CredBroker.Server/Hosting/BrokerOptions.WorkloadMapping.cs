namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    public sealed class WorkloadMapping
    {
        /// <summary>The subject claim value, e.g. <c>system:serviceaccount:agents:triage</c> or <c>spiffe://example.org/ns/agents/sa/triage</c>.</summary>
        public string Subject { get; set; } = string.Empty;

        public string Agent { get; set; } = string.Empty;
    }
}
