using System.Security.Cryptography;

namespace CredBroker.Server.Hosting;

/// <summary>
/// `--dev`: in-memory store, a generated signing key, the sample agent, and printed secrets.
/// Only ever enabled by the flag (or CredBroker:Dev=true), never implied.
/// </summary>
public static class DevMode
{
    public const string AgentId = "dev-agent";

    /// <summary>The subject the dev operator secret authenticates as.</summary>
    public const string OperatorId = "dev-operator";

    /// <summary>The dev policy: <c>dev-agent</c> as DESIGN.md defines it, <c>demo:admin</c> through a human's approval.</summary>
    public const string SamplePolicy = """
        version: 1
        settings:
          approval_timeout: 10m
          denial_burst: { threshold: 20, window: 1m, action: alert }
        context_labels:
          environment: [dev, staging, prod]
          data_class: [public, internal, confidential]
        agents:
          - id: dev-agent
            owner: dev@example.com
            purpose: local development
            identities: [dev-agent]
            audiences: [demo-api]
            allowed_scopes: [demo:read, demo:write]
            approval_scopes: [demo:admin]
            disallowed_scopes: [demo:delete]
            max_token_ttl: 15m
            default_lease_ttl: 15m
            max_lease_lifetime: 1h
        context_rules:
          - id: prod-write-approval
            description: writes against production data need a human
            when: { environment: [prod] }
            scopes: [demo:write]
            action: require_approval
        """;

    /// <summary>
    /// Dev mode listens on loopback only: its secrets are printed and anyone reaching the port acts as
    /// the dev agent or operator. Another address is refused unless forced with
    /// <c>CredBroker:DevAllowNonLoopback=true</c>, which prints a loud warning.
    /// </summary>
    public static void CheckListenAddress(BrokerOptions options, TextWriter console)
    {
        var address = options.Listen.Address;
        if (!System.Net.IPAddress.TryParse(address, out var parsed))
        {
            throw new StartupException($"CredBroker refuses to start: CredBroker:Listen:Address '{address}' is not an IP address.");
        }

        if (System.Net.IPAddress.IsLoopback(parsed))
        {
            return;
        }

        if (!options.DevAllowNonLoopback)
        {
            throw new StartupException(
                $"CredBroker refuses to start: dev mode listens on loopback only, but CredBroker:Listen:Address is {address}. " +
                "Dev mode prints its secrets and keeps everything in memory; anyone who reaches the port acts as the dev agent or operator. " +
                "Use 127.0.0.1, or force it with CredBroker:DevAllowNonLoopback=true if you really mean it.");
        }

        var warning = $$"""

            ************************************************************************************
            WARNING: DEV MODE IS LISTENING ON A NON-LOOPBACK ADDRESS ({{address}}), forced with
            CredBroker:DevAllowNonLoopback=true. Its secrets are printed, its key and store are
            in memory, and anyone who can reach these ports can act as the dev agent or operator.
            Never do this on a shared or public network.
            ************************************************************************************

            """;
        console.WriteLine(warning);
        Console.Error.WriteLine(warning);
    }

    public static string Secret(string variable) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } fromEnv ? fromEnv : Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Banner(BrokerOptions options, string agentSecret, string operatorSecret)
    {
        var l = options.Listen;
        return $$"""

            CredBroker is running in DEV MODE (in-memory store, generated signing key; not for production).
              HTTP (JWKS, health)   http://{{l.Address}}:{{l.HttpPort}}/.well-known/jwks.json
              agent gRPC (h2c)      {{l.Address}}:{{l.AgentPort}}   services credbroker.v1.AgentBroker, credbroker.v1.TokenValidation
              operator gRPC (h2c)   {{l.Address}}:{{l.OperatorPort}}   service credbroker.v1.Operator
              web console           {{(l.ConsolePort > 0 ? $"http://{l.Address}:{l.ConsolePort}/   (sign in with the operator secret)" : "off (Listen:ConsolePort=0)")}}

              agent secret     (agent '{{AgentId}}'):  {{agentSecret}}
              operator secret:                       {{operatorSecret}}
              (set CREDBROKER_DEV_SECRET / CREDBROKER_DEV_OPERATOR_SECRET to choose them)

            Try it (each in its own terminal, with CREDBROKER_DEV_SECRET='{{agentSecret}}' exported):
              dotnet run --project samples/DownstreamApi              # the demo-api on http://127.0.0.1:5500
              dotnet run --project samples/AgentRuntime               # begin, call the API, renew, complete, rejected
              /usr/bin/python3 samples/python-agent/agent.py          # the same flow with grpcio
            or with grpcurl (server reflection is on):
              grpcurl -plaintext {{l.Address}}:{{l.AgentPort}} list
              grpcurl -plaintext -H "authorization: Bearer $CREDBROKER_DEV_SECRET" -d '{"task_id":"t1","scopes":["demo:read"]}' \
                {{l.Address}}:{{l.AgentPort}} credbroker.v1.AgentBroker/BeginTask
              grpcurl -plaintext -H "authorization: Bearer {{operatorSecret}}" -d '{"agent_id":"{{AgentId}}"}' \
                {{l.Address}}:{{l.OperatorPort}} credbroker.v1.Operator/ListLeases

            """;
    }
}
