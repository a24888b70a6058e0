using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using CredBroker.Client;

namespace CredBroker.Cli;

/// <summary>The global options every command shares: where the operator listener is, the credential, output format.</summary>
internal sealed class Connection
{
    public const string AddressVariable = "CREDBROKER_OPERATOR_ADDRESS";
    public const string TokenVariable = "CREDBROKER_OPERATOR_TOKEN";

    public Option<string> Server { get; } = new("--server", "-s")
    {
        Description = $"The operator listener (env {AddressVariable}; default http://127.0.0.1:5402).",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(AddressVariable) is { Length: > 0 } address ? address : "http://127.0.0.1:5402",
    };

    public Option<string?> Token { get; } = new("--token")
    {
        Description = $"The operator credential (env {TokenVariable}); prefer --token-file, command lines are visible to other users.",
        Recursive = true,
    };

    public Option<FileInfo?> TokenFile { get; } = new("--token-file")
    {
        Description = "A file holding the operator credential (read on every call, so a refreshed file is picked up).",
        Recursive = true,
    };

    public Option<FileInfo?> CaFile { get; } = new("--ca-file")
    {
        Description = "PEM CA certificate that signed the broker's TLS certificate (https:// servers with a private CA).",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Machine-readable output: one JSON document (audit query/tail: one JSON object per line).",
        Recursive = true,
    };

    public Option<double> TimeoutSeconds { get; } = new("--timeout")
    {
        Description = "Seconds to wait for each call (default 10; audit verify: 300).",
        Recursive = true,
        DefaultValueFactory = _ => 0,
    };

    public IEnumerable<Option> All => [Server, Token, TokenFile, CaFile, Json, TimeoutSeconds];

    public Uri Address(ParseResult parse)
    {
        var value = parse.GetValue(Server)!;
        return Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new UsageException($"--server '{value}' is not an http:// or https:// address.");
    }

    public TimeSpan Timeout(ParseResult parse, TimeSpan fallback)
    {
        var seconds = parse.GetValue(TimeoutSeconds);
        return seconds switch
        {
            0 => fallback,
            > 0 and <= 86_400 => TimeSpan.FromSeconds(seconds),
            _ => throw new UsageException("--timeout must be between 0 and 86400 seconds."),
        };
    }

    public CredBrokerOperatorClient Client(ParseResult parse, TimeSpan? timeout = null)
    {
        var token = parse.GetValue(Token);
        var file = parse.GetValue(TokenFile);
        Func<string> credential;
        if (file is not null)
        {
            if (!file.Exists)
            {
                throw new UsageException($"--token-file {file.FullName} does not exist.");
            }

            credential = () => File.ReadAllText(file.FullName).Trim();
        }
        else if ((token ?? Environment.GetEnvironmentVariable(TokenVariable)) is { Length: > 0 } value)
        {
            credential = () => value;
        }
        else
        {
            throw new MissingCredentialException();
        }

        X509Certificate2? root = null;
        if (parse.GetValue(CaFile) is { } ca)
        {
            root = X509Certificate2.CreateFromPemFile(ca.FullName);
        }

        return new CredBrokerOperatorClient(Address(parse), credential, trustedRoot: root) { Timeout = timeout ?? Timeout(parse, TimeSpan.FromSeconds(10)) };
    }
}

/// <summary>Bad command-line input the parser cannot catch (exit 2).</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>No credential given (exit 4).</summary>
internal sealed class MissingCredentialException()
    : Exception($"no operator credential: pass --token-file <file>, --token <credential>, or set {Connection.TokenVariable}.");
