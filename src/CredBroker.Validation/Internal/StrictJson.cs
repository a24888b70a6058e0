using System.Text.Json;

namespace CredBroker.Validation.Internal;

/// <summary>JSON parsing that refuses duplicate member names anywhere (RFC 8725 §3.2: no parser differentials).</summary>
internal static class StrictJson
{
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false, MaxDepth = 16 };
    private static readonly JsonDocumentOptions Lenient = new() { MaxDepth = 16 };

    /// <summary>Parses an object; on failure <paramref name="error"/> tells a duplicate member from plain malformed JSON.</summary>
    public static JsonDocument? TryParseObject(ReadOnlyMemory<byte> utf8, out string? error)
    {
        try
        {
            var document = JsonDocument.Parse(utf8, Strict);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                error = TokenErrors.Malformed;
                return null;
            }

            error = null;
            return document;
        }
        catch (JsonException)
        {
            error = IsValidJsonIgnoringDuplicates(utf8) ? TokenErrors.DuplicateMember : TokenErrors.Malformed;
            return null;
        }
    }

    public static string? GetString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static bool IsValidJsonIgnoringDuplicates(ReadOnlyMemory<byte> utf8)
    {
        try
        {
            using var _ = JsonDocument.Parse(utf8, Lenient);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
