using Microsoft.Extensions.Options;

namespace CredBroker.Client;

/// <summary>
/// Settings of <c>AddCredBrokerClient</c>, bound from the configuration section
/// <see cref="SectionName"/> (<c>CredBroker:Client</c>) and validated at start-up.
/// </summary>
public sealed class CredBrokerClientOptions
{
    public const string SectionName = "CredBroker:Client";

    /// <summary>The agent listener, e.g. <c>http://127.0.0.1:5401</c> (h2c, loopback only) or <c>https://credbroker:5401</c>.</summary>
    public Uri? Address { get; set; }

    /// <summary>Per-call deadline (default 10 s); retries of UNAVAILABLE happen within it.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A file holding the workload credential (e.g. a Kubernetes projected service-account token or
    /// a SPIFFE JWT-SVID), read on every call so rotation is picked up.
    /// </summary>
    public string? CredentialFile { get; set; }

    /// <summary>A fixed credential (e.g. the dev broker's secret from an environment variable). Never put it in a checked-in file.</summary>
    public string? Credential { get; set; }

    /// <summary>Code-only: asked for the current credential on every call (set it in the <c>Action</c> overload).</summary>
    public Func<CancellationToken, ValueTask<string>>? CredentialSource { get; set; }

    /// <summary>PEM CA certificate the broker's TLS certificate must chain to, instead of the system trust store (https only).</summary>
    public string? TrustedRootFile { get; set; }

    /// <summary>PEM client certificate presented for mTLS (https only; with <see cref="ClientKeyFile"/>).</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>PEM private key of <see cref="ClientCertificateFile"/>.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>
    /// Send DPoP proofs (RFC 9449) on BeginTask, IssueToken and RenewLease so tokens are bound to a key
    /// (<c>cnf.jkt</c>): the key of <see cref="DpopKeyFile"/>, else one generated per process.
    /// </summary>
    public bool UseDpop { get; set; }

    /// <summary>PEM EC P-256 private key for DPoP proofs (with <see cref="UseDpop"/>); default: a key generated at start, held in memory.</summary>
    public string? DpopKeyFile { get; set; }

    /// <summary>The agent listener as the broker knows it (its <c>CredBroker:Dpop:AgentUris</c>), for the proofs' <c>htu</c>; default <see cref="Address"/>.</summary>
    public Uri? DpopUri { get; set; }

    /// <summary>Attempts per call when the broker is UNAVAILABLE, the first included (1–5; default 4).</summary>
    public int MaxRetryAttempts { get; set; } = 4;

    /// <summary>Backoff before the first retry (default 100 ms); doubles per attempt up to <see cref="MaxBackoff"/>, with jitter.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest backoff between attempts (default 2 s).</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(2);

    internal RetrySettings Retry => new() { MaxAttempts = MaxRetryAttempts, InitialBackoff = InitialBackoff, MaxBackoff = MaxBackoff };
}

/// <summary>Checks <see cref="CredBrokerClientOptions"/>; each failure names the setting (<c>CredBroker:Client:…</c>) and what is wrong.</summary>
public sealed class CredBrokerClientOptionsValidator : IValidateOptions<CredBrokerClientOptions>
{
    private const string Prefix = CredBrokerClientOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, CredBrokerClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        var tls = false;
        if (options.Address is not { IsAbsoluteUri: true } address || address.Scheme is not ("http" or "https"))
        {
            failures.Add($"{Prefix}Address is required: the broker's agent listener as an absolute http:// or https:// address (got '{options.Address}').");
        }
        else
        {
            tls = address.Scheme == "https";
            if (address.AbsolutePath != "/" || address.Query.Length > 0)
            {
                failures.Add($"{Prefix}Address '{address}' must be scheme, host and port only (no path or query).");
            }
        }

        if (options.Timeout <= TimeSpan.Zero || options.Timeout > TimeSpan.FromDays(1))
        {
            failures.Add($"{Prefix}Timeout must be more than 0 and at most 1 day (got {options.Timeout}).");
        }

        var sources = new[]
        {
            (Set: options.CredentialSource is not null, Name: "CredentialSource"),
            (Set: !string.IsNullOrWhiteSpace(options.CredentialFile), Name: "CredentialFile"),
            (Set: !string.IsNullOrWhiteSpace(options.Credential), Name: "Credential"),
        }.Where(s => s.Set).Select(s => Prefix + s.Name).ToList();
        if (sources.Count != 1)
        {
            failures.Add(sources.Count == 0
                ? $"No workload credential: set {Prefix}CredentialFile (a token file, re-read per call), {Prefix}Credential, or CredentialSource in code."
                : $"Set exactly one workload credential source; got {string.Join(" and ", sources)}.");
        }

        RequireFile(failures, "CredentialFile", options.CredentialFile);
        RequireFile(failures, "TrustedRootFile", options.TrustedRootFile);
        RequireFile(failures, "ClientCertificateFile", options.ClientCertificateFile);
        RequireFile(failures, "ClientKeyFile", options.ClientKeyFile);
        if (string.IsNullOrEmpty(options.ClientCertificateFile) != string.IsNullOrEmpty(options.ClientKeyFile))
        {
            failures.Add($"{Prefix}ClientCertificateFile and {Prefix}ClientKeyFile go together (mTLS needs the certificate and its key).");
        }

        if (!tls && options.Address is { IsAbsoluteUri: true } && (!string.IsNullOrEmpty(options.TrustedRootFile) || !string.IsNullOrEmpty(options.ClientCertificateFile)))
        {
            failures.Add($"{Prefix}TrustedRootFile and {Prefix}ClientCertificateFile need an https:// {Prefix}Address.");
        }

        RequireFile(failures, "DpopKeyFile", options.DpopKeyFile);
        if (!string.IsNullOrEmpty(options.DpopKeyFile) && !options.UseDpop)
        {
            failures.Add($"{Prefix}DpopKeyFile is set but {Prefix}UseDpop is false: set UseDpop=true to send DPoP proofs.");
        }

        if (options.DpopUri is { } dpopUri && (!dpopUri.IsAbsoluteUri || dpopUri.Scheme is not ("http" or "https") || dpopUri.Query.Length > 0))
        {
            failures.Add($"{Prefix}DpopUri must be an absolute http(s) URI without query (got '{dpopUri}').");
        }

        if (options.MaxRetryAttempts is < 1 or > 5)
        {
            failures.Add($"{Prefix}MaxRetryAttempts must be 1 to 5 (1 = no retries; got {options.MaxRetryAttempts}).");
        }

        if (options.InitialBackoff <= TimeSpan.Zero || options.MaxBackoff < options.InitialBackoff)
        {
            failures.Add($"{Prefix}InitialBackoff must be more than 0 and at most {Prefix}MaxBackoff (got {options.InitialBackoff} and {options.MaxBackoff}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void RequireFile(List<string> failures, string setting, string? path)
    {
        if (!string.IsNullOrEmpty(path) && !File.Exists(path))
        {
            failures.Add($"{Prefix}{setting}: the file '{path}' does not exist.");
        }
    }
}
