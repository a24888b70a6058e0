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
            if (document.RootElement.ValueKind != JsonValueKind.Object || !AllTextDecodes(document.RootElement))
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

    /// <summary>
    /// False when some member name or string is not representable as UTF-16 (invalid UTF-8, a lone
    /// surrogate escape): <see cref="JsonElement.GetString"/> would throw on it later, so such a
    /// document is malformed up front and every later read is safe.
    /// </summary>
    private static bool AllTextDecodes(JsonElement root)
    {
        try
        {
            Walk(root);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }

        static void Walk(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var member in element.EnumerateObject())
                    {
                        _ = member.Name;
                        Walk(member.Value);
                    }

                    break;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Walk(item);
                    }

                    break;
                case JsonValueKind.String:
                    _ = element.GetString();
                    break;
            }
        }
    }

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
