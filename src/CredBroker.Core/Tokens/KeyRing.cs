namespace CredBroker.Core.Tokens;

/// <summary>
/// The private keys this replica can sign with, by kid: PEM files listed in configuration and
/// every <c>*.pem</c> in a key directory (a mounted Secret), rescanned by <see cref="Reload"/> so a
/// key added to the Secret becomes usable without a restart. In dev mode keys may be generated.
/// </summary>
public sealed class KeyRing
{
    public const int MaxKeyFiles = 64;

    private readonly IReadOnlyList<string> _files;
    private readonly string? _directory;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _loaded = new(StringComparer.Ordinal);
    private volatile IReadOnlyList<SigningKey> _keys = [];

    public KeyRing(IReadOnlyList<string> files, string? directory, bool allowGenerate = false)
    {
        _files = files;
        _directory = string.IsNullOrEmpty(directory) ? null : directory;
        AllowGenerate = allowGenerate;
        Reload();
        if (_keys.Count == 0 && !allowGenerate)
        {
            throw new InvalidOperationException("No signing key: configure Signing:KeyFiles or put PEM EC P-256 keys into Signing:KeyDirectory.");
        }
    }

    /// <summary>Dev mode only: a rotation with no spare key generates one in memory.</summary>
    public bool AllowGenerate { get; }

    /// <summary>Keys in configuration order (listed files first, then the directory by file name).</summary>
    public IReadOnlyList<SigningKey> Keys => _keys;

    public SigningKey? Find(string kid) => _keys.FirstOrDefault(k => k.Kid == kid);

    /// <summary>Loads key files not read before; returns what failed to load (such a file is retried next time).</summary>
    public IReadOnlyList<string> Reload()
    {
        var problems = new List<string>();
        lock (_gate)
        {
            var paths = _files.ToList();
            if (_directory is not null)
            {
                if (Directory.Exists(_directory))
                {
                    paths.AddRange(Directory.EnumerateFiles(_directory, "*.pem").Order(StringComparer.Ordinal).Take(MaxKeyFiles));
                }
                else
                {
                    problems.Add($"{_directory}: signing key directory not found.");
                }
            }

            var keys = _keys.ToList();
            foreach (var path in paths.Distinct(StringComparer.Ordinal).Where(p => !_loaded.Contains(p)))
            {
                try
                {
                    var key = SigningKey.FromPemFile(path);
                    _loaded.Add(path);
                    if (keys.All(k => k.Kid != key.Kid))
                    {
                        keys.Add(key);
                    }
                }
                catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
                {
                    problems.Add(e is InvalidOperationException ? e.Message : $"{path}: {e.Message}");
                }
            }

            // A key stays loaded once read (its file may be gone from the Secret while it still signs).
            _keys = keys;
            return problems;
        }
    }

    /// <summary>Adds a generated key (dev mode rotation).</summary>
    public SigningKey Generate()
    {
        if (!AllowGenerate)
        {
            throw new KeyRotationException(KeyRotationError.NoSpareKey, "This broker does not generate signing keys (production keys come from files).");
        }

        var key = SigningKey.Generate();
        lock (_gate)
        {
            _keys = [.. _keys, key];
        }

        return key;
    }
}
