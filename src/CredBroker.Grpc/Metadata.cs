using System.Collections;

namespace CredBroker.Grpc;

/// <summary>
/// Custom metadata for one direction of a call: ordered name/value pairs. Names are lower-case
/// <c>[0-9a-z_.-]</c>; names ending in <c>-bin</c> carry bytes (base64 on the wire), all others
/// printable ASCII. Names the protocol reserves (<c>grpc-*</c>, pseudo-headers, transport headers)
/// are refused, so a handler or caller can never forge a status or break framing.
/// </summary>
public sealed class Metadata : IEnumerable<Metadata.Entry>
{
    /// <summary>Upper bound on one metadata value, well under Kestrel's header limits.</summary>
    public const int MaxValueLength = 8 * 1024;

    private static readonly HashSet<string> ReservedNames = new(StringComparer.Ordinal)
    {
        "content-type", "te", "user-agent", "host", "connection", "keep-alive", "proxy-connection",
        "transfer-encoding", "upgrade", "content-length", "content-encoding", "accept-encoding",
    };

    private readonly List<Entry> _entries = [];

    public int Count => _entries.Count;

    public void Add(string name, string value)
    {
        Validate(name, binary: false);
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length > MaxValueLength || value.Any(c => c is < ' ' or > '~'))
        {
            throw new ArgumentException($"Metadata '{name}' must be printable ASCII of at most {MaxValueLength} characters; use a -bin name for other data.", nameof(value));
        }

        _entries.Add(new Entry(name, value, null));
    }

    public void Add(string name, byte[] value)
    {
        Validate(name, binary: true);
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length > MaxValueLength)
        {
            throw new ArgumentException($"Metadata '{name}' is larger than {MaxValueLength} bytes.", nameof(value));
        }

        _entries.Add(new Entry(name, null, value));
    }

    /// <summary>True for names this layer owns: <c>grpc-*</c>, <c>:</c>-pseudo-headers and HTTP transport headers.</summary>
    public static bool IsReserved(string name) =>
        name.StartsWith("grpc-", StringComparison.Ordinal) || name.StartsWith(':') || ReservedNames.Contains(name);

    /// <summary>True for a well-formed name that is not reserved.</summary>
    public static bool IsValidCustomName(string name) =>
        name.Length > 0 && !IsReserved(name) && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' or '.');

    /// <summary>
    /// The custom metadata among received HTTP/2 headers: reserved names, malformed names,
    /// undecodable -bin values and values that break the ASCII rules are skipped.
    /// </summary>
    internal static Metadata FromHeaders(IEnumerable<(string Name, IEnumerable<string?> Values)> headers)
    {
        var metadata = new Metadata();
        foreach (var (name, values) in headers)
        {
            var lower = name.ToLowerInvariant();
            if (!IsValidCustomName(lower))
            {
                continue;
            }

            foreach (var value in values)
            {
                var binary = lower.EndsWith("-bin", StringComparison.Ordinal);
                if (!binary && value is { Length: <= MaxValueLength } && value.All(c => c is >= ' ' and <= '~'))
                {
                    metadata._entries.Add(new Entry(lower, value, null));
                }
                else if (binary && Base64Codec.TryDecode(value ?? string.Empty) is { Length: <= MaxValueLength } bytes)
                {
                    metadata._entries.Add(new Entry(lower, null, bytes));
                }
            }
        }

        return metadata;
    }

    public IEnumerator<Entry> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private static void Validate(string name, bool binary)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (IsReserved(name))
        {
            throw new ArgumentException($"Metadata name '{name}' is reserved by the gRPC protocol.", nameof(name));
        }

        if (!IsValidCustomName(name))
        {
            throw new ArgumentException($"Metadata name '{name}' must be lower-case letters, digits, '-', '_' or '.'.", nameof(name));
        }

        if (binary != name.EndsWith("-bin", StringComparison.Ordinal))
        {
            throw new ArgumentException(binary
                ? $"Binary metadata names end in -bin ('{name}' does not)."
                : $"Metadata '{name}' ends in -bin, so its value must be bytes.", nameof(name));
        }
    }

    /// <summary>One pair; exactly one of <see cref="Value"/> and <see cref="Bytes"/> is set.</summary>
    public sealed record Entry(string Name, string? Value, byte[]? Bytes)
    {
        public bool IsBinary => Bytes is not null;

        /// <summary>The value as it travels in an HTTP/2 header (unpadded base64 for binary values).</summary>
        internal string WireValue => Bytes is null ? Value! : Convert.ToBase64String(Bytes).TrimEnd('=');
    }
}
