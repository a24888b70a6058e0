namespace CredBroker.Core.Tokens;

internal static class Base64Url
{
    public static string Encode(ReadOnlySpan<byte> data) => System.Buffers.Text.Base64Url.EncodeToString(data);

    /// <summary>Unpadded base64url (RFC 7515 §2) only; anything else — other characters, padding, a length of 4n+1 — is null, never an exception.</summary>
    public static byte[]? TryDecode(ReadOnlySpan<char> text)
    {
        if (text.Length % 4 == 1)
        {
            return null;
        }

        foreach (var c in text)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_'))
            {
                return null;
            }
        }

        var buffer = new byte[System.Buffers.Text.Base64Url.GetMaxDecodedLength(text.Length)];
        try
        {
            return System.Buffers.Text.Base64Url.TryDecodeFromChars(text, buffer, out var written) ? buffer[..written] : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
