namespace CredBroker.Grpc;

internal static class Base64Codec
{
    /// <summary>Decodes padded or unpadded base64 (gRPC allows either for -bin metadata).</summary>
    public static byte[]? TryDecode(string value)
    {
        var padded = (value.Length % 4) switch
        {
            2 => value + "==",
            3 => value + "=",
            _ => value,
        };
        var buffer = new byte[padded.Length * 3 / 4];
        return Convert.TryFromBase64String(padded, buffer, out var written) ? buffer[..written] : null;
    }
}
