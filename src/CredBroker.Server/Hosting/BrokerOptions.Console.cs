using System.Net;

namespace CredBroker.Server.Hosting;

public sealed partial class BrokerOptions
{
    /// <summary>The web console (its listener is <c>Listen:ConsolePort</c>) and the approval webhooks.</summary>
    public ConsoleOptions Console { get; set; } = new();

    /// <summary>
    /// On in dev mode (signed in with the dev operator secret); in production only when
    /// <c>Console:Oidc:Authority</c> is set (signed in through the organisation's OpenID provider).
    /// </summary>
    public bool ConsoleEnabled => Listen.ConsolePort > 0 && (Dev || !string.IsNullOrWhiteSpace(Console.Oidc.Authority));

    /// <summary>The console's address as browsers reach it (links in webhooks, OIDC redirect).</summary>
    public Uri ConsolePublicUrl => Console.PublicUrl is { Length: > 0 } url
        ? new Uri(url.EndsWith('/') ? url : url + "/")
        : new Uri($"{(Listen.Tls is null ? "http" : "https")}://{Listen.Address}:{Listen.ConsolePort}/");

    public sealed class ConsoleOptions
    {
        /// <summary>The console's public base URL (e.g. <c>https://credbroker.example.com/</c>); default the listener's own address.</summary>
        public string? PublicUrl { get; set; }

        public ConsoleOidcOptions Oidc { get; set; } = new();

        /// <summary>How long a console session lasts (sliding), 5 min to 24 h.</summary>
        public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);

        public WebhookOptions Webhooks { get; set; } = new();
    }

    /// <summary>
    /// Sign-in with OpenID Connect (authorization code + PKCE). The provider must be one of
    /// <c>Operators:Issuers</c>: roles come from <c>Operators:Grants</c> exactly as for operator credentials.
    /// </summary>
    public sealed class ConsoleOidcOptions
    {
        /// <summary>The provider's issuer URL (its discovery document is under <c>.well-known/openid-configuration</c>).</summary>
        public string? Authority { get; set; }

        public string ClientId { get; set; } = string.Empty;

        /// <summary>A file with the client secret (confidential client); none = public client (PKCE only).</summary>
        public string? ClientSecretFile { get; set; }

        /// <summary>Scopes requested besides <c>openid</c> (e.g. the one that releases the group claim).</summary>
        public List<string> Scopes { get; set; } = ["profile"];
    }

    /// <summary>Webhooks POSTed when an approval is requested (CloudEvents 1.0, structured JSON, HMAC-SHA256 signed).</summary>
    public sealed class WebhookOptions
    {
        public List<WebhookEndpoint> Endpoints { get; set; } = [];

        /// <summary>Events waiting for delivery at most; when full the oldest is dropped (logged and counted).</summary>
        public int QueueCapacity { get; set; } = 1000;

        /// <summary>Attempts per event and endpoint (the first included).</summary>
        public int MaxAttempts { get; set; } = 8;

        public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromSeconds(1);

        public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
    }

    public sealed class WebhookEndpoint
    {
        /// <summary>https (http only to a loopback address).</summary>
        public string Url { get; set; } = string.Empty;

        /// <summary>A file with the shared signing secret (at least 32 bytes; base64 or raw).</summary>
        public string SecretFile { get; set; } = string.Empty;
    }

    /// <summary>Console and webhook settings that cannot work (dev mode too).</summary>
    public IEnumerable<string> ConsoleProblems()
    {
        if (Listen.ConsolePort is < 0 or > 65535)
        {
            yield return "CredBroker:Listen:ConsolePort must be 0 (no console) or a port number.";
        }

        if (!Dev && Console.Oidc.Authority is { Length: > 0 } authority)
        {
            if (!Uri.TryCreate(authority, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && IsLoopback(uri))))
            {
                yield return "CredBroker:Console:Oidc:Authority must be an https URL (http only on a loopback address).";
            }

            if (string.IsNullOrWhiteSpace(Console.Oidc.ClientId))
            {
                yield return "CredBroker:Console:Oidc:ClientId is not set.";
            }

            if (!Operators.Issuers.Any(i => string.Equals(i.Issuer.TrimEnd('/'), authority.TrimEnd('/'), StringComparison.Ordinal)))
            {
                yield return "CredBroker:Console:Oidc:Authority must also be one of CredBroker:Operators:Issuers: console roles come from CredBroker:Operators:Grants for that issuer.";
            }

            if (Console.Oidc.ClientSecretFile is { Length: > 0 } secret && !File.Exists(secret))
            {
                yield return $"CredBroker:Console:Oidc:ClientSecretFile '{secret}' does not exist.";
            }

            if (Listen.Tls is null && IPAddress.TryParse(Listen.Address, out var address) && !IPAddress.IsLoopback(address) && !Listen.AllowPlaintext)
            {
                yield return "The console would serve sign-in cookies in cleartext on a non-loopback address: set CredBroker:Listen:Tls (or Listen:AllowPlaintext behind a TLS-terminating proxy).";
            }
        }

        if (Console.PublicUrl is { Length: > 0 } publicUrl && !Uri.TryCreate(publicUrl, UriKind.Absolute, out _))
        {
            yield return "CredBroker:Console:PublicUrl must be an absolute URL.";
        }

        if (Console.SessionLifetime < TimeSpan.FromMinutes(5) || Console.SessionLifetime > TimeSpan.FromHours(24))
        {
            yield return "CredBroker:Console:SessionLifetime must be between 00:05:00 and 24:00:00.";
        }

        var hooks = Console.Webhooks;
        if (hooks.QueueCapacity is < 1 or > 100_000 || hooks.MaxAttempts is < 1 or > 100 || hooks.InitialBackoff <= TimeSpan.Zero
            || hooks.MaxBackoff < hooks.InitialBackoff || hooks.Timeout <= TimeSpan.Zero)
        {
            yield return "CredBroker:Console:Webhooks: QueueCapacity 1..100000, MaxAttempts 1..100, InitialBackoff > 0, MaxBackoff ≥ InitialBackoff and Timeout > 0.";
        }

        for (var i = 0; i < hooks.Endpoints.Count; i++)
        {
            var endpoint = hooks.Endpoints[i];
            var key = $"CredBroker:Console:Webhooks:Endpoints:{i}";
            if (!Uri.TryCreate(endpoint.Url, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttps && !(url.Scheme == Uri.UriSchemeHttp && IsLoopback(url))))
            {
                yield return $"{key}:Url must be an https URL (http only to a loopback address).";
            }

            if (string.IsNullOrWhiteSpace(endpoint.SecretFile) || !File.Exists(endpoint.SecretFile))
            {
                yield return $"{key}:SecretFile must name an existing file with the signing secret.";
            }
        }
    }

    private static bool IsLoopback(Uri uri) => uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
