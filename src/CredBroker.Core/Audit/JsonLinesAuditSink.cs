using System.Text;
using System.Text.Json;

namespace CredBroker.Core.Audit;

/// <summary>
/// Appends one JSON object per record to a file (sequence, hashes and the canonical event), for a
/// SIEM shipper to tail. The lines carry the chain hashes, so the copy can be verified on its own.
/// </summary>
public sealed class JsonLinesAuditSink(string path) : IAuditSink, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task WriteAsync(AuditRecord record, CancellationToken cancellationToken)
    {
        var line = Line(record);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await File.AppendAllTextAsync(path, line, Encoding.UTF8, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    public static string Line(AuditRecord record)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteNumber("sequence", record.Sequence);
            json.WriteString("previous_hash", record.PreviousHash);
            json.WriteString("hash", record.Hash);
            json.WritePropertyName("event");
            json.WriteRawValue(record.Body, skipInputValidation: false);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    public void Dispose() => _gate.Dispose();
}
