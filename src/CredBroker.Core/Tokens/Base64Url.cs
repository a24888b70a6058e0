namespace CredBroker.Core.Tokens;

internal static class Base64Url
{
    public static string Encode(ReadOnlySpan<byte> data) => System.Buffers.Text.Base64Url.EncodeToString(data);

    public static byte[]? TryDecode(ReadOnlySpan<char> text)
    {
        var buffer = new byte[System.Buffers.Text.Base64Url.GetMaxDecodedLength(text.Length)];
        return System.Buffers.Text.Base64Url.TryDecodeFromChars(text, buffer, out var written) ? buffer[..written] : null;
    }
}
