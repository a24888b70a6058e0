namespace CredBroker.Validation.Internal;

/// <summary>
/// base64url (RFC 4648 §5) as JWS requires it: no padding, no '+', '/' or whitespace, and only the
/// canonical encoding (unused trailing bits zero), so one token has exactly one spelling.
/// </summary>
internal static class StrictBase64Url
{
    public static byte[]? TryDecode(ReadOnlySpan<char> text)
    {
        if (text.Length % 4 == 1)
        {
            return null;
        }

        foreach (var c in text)
        {
            if (!IsAlphabet(c))
            {
                return null;
            }
        }

        var padded = new char[(text.Length + 3) / 4 * 4];
        for (var i = 0; i < text.Length; i++)
        {
            padded[i] = text[i] switch { '-' => '+', '_' => '/', var c => c };
        }

        padded.AsSpan(text.Length).Fill('=');
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64CharArray(padded, 0, padded.Length);
        }
        catch (FormatException)
        {
            return null;
        }

        // Reject non-canonical spellings (non-zero unused bits): re-encoding must give the input back.
        return Encode(bytes).AsSpan().SequenceEqual(text) ? bytes : null;
    }

    public static string Encode(ReadOnlySpan<byte> data) =>
        Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static bool IsAlphabet(char c) =>
        c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_';
}
