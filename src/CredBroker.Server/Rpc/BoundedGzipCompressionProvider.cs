using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using Grpc.Core;
using Grpc.Net.Compression;

namespace CredBroker.Server.Rpc;

/// <summary>
/// gzip for gRPC messages, strict on the way in: a message inflates to at most
/// <c>maxDecompressedSize</c> bytes (a small compressed bomb ends RESOURCE_EXHAUSTED without
/// inflating further), and it must be one complete gzip member whose trailer (CRC-32 and size)
/// matches what was inflated — a cut-off or corrupt message ends INTERNAL instead of being read as
/// a shorter message. (The library's own provider inflates without a bound and without checking
/// the trailer.) The compressed message itself is already bounded by the receive limit.
/// </summary>
public sealed class BoundedGzipCompressionProvider(int maxDecompressedSize) : ICompressionProvider
{
    private const int HeaderAndTrailer = 18;

    public string EncodingName => "gzip";

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) =>
        new GZipStream(stream, compressionLevel ?? CompressionLevel.Fastest, leaveOpen: true);

    public Stream CreateDecompressionStream(Stream stream)
    {
        using var compressed = new MemoryStream();
        stream.CopyTo(compressed);
        var bytes = compressed.GetBuffer().AsSpan(0, (int)compressed.Length);
        if (bytes.Length < HeaderAndTrailer || bytes[0] != 0x1f || bytes[1] != 0x8b)
        {
            throw Corrupt("it is not a gzip member");
        }

        var inflated = new MemoryStream();
        try
        {
            using var gzip = new GZipStream(new MemoryStream(compressed.GetBuffer(), 0, bytes.Length, writable: false), CompressionMode.Decompress);
            var buffer = new byte[8192];
            int read;
            while ((read = gzip.Read(buffer, 0, (int)Math.Min(buffer.Length, maxDecompressedSize + 1L - inflated.Length))) > 0)
            {
                inflated.Write(buffer, 0, read);
                if (inflated.Length > maxDecompressedSize)
                {
                    throw RpcErrors.Create(StatusCode.ResourceExhausted,
                        $"The request message inflates past the {maxDecompressedSize}-byte receive limit; send a smaller message.", "MESSAGE_TOO_LARGE");
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw Corrupt(e.Message);
        }

        var trailer = bytes[^8..];
        var output = inflated.GetBuffer().AsSpan(0, (int)inflated.Length);
        if (BinaryPrimitives.ReadUInt32LittleEndian(trailer) != Crc32.HashToUInt32(output)
            || BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]) != (uint)output.Length)
        {
            throw Corrupt("it is cut off or its CRC-32 does not match (one complete gzip member is expected)");
        }

        inflated.Position = 0;
        return inflated;
    }

    private static RpcException Corrupt(string why) =>
        RpcErrors.Create(StatusCode.Internal, $"The gzip-compressed request cannot be read: {why}.", "MALFORMED_MESSAGE");
}
