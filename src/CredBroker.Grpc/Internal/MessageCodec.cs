using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Google.Protobuf;

namespace CredBroker.Grpc.Internal;

/// <summary>Length-prefixed message framing and gzip, shared by server and client.</summary>
internal static class MessageCodec
{
    /// <summary>
    /// Serializes <paramref name="message"/> as one frame: compressed flag, big-endian length, bytes.
    /// The size limit applies to the serialized message, before compression.
    /// </summary>
    public static byte[] Frame(IMessage message, int maxSize, bool gzip = false)
    {
        var size = message.CalculateSize();
        if (size > maxSize)
        {
            throw new RpcException(StatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size ({size} > {maxSize} bytes).");
        }

        var payload = message.ToByteArray();
        if (gzip)
        {
            payload = Gzip(payload);
        }

        var frame = new byte[GrpcProtocol.FrameHeaderSize + payload.Length];
        frame[0] = gzip ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), (uint)payload.Length);
        payload.CopyTo(frame.AsSpan(GrpcProtocol.FrameHeaderSize));
        return frame;
    }

    /// <summary>
    /// Tries to take one complete frame from the front of <paramref name="buffer"/>. Returns false
    /// when more bytes are needed; throws for a frame larger than <paramref name="maxSize"/>.
    /// </summary>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxSize, out bool compressed, out ReadOnlySequence<byte> payload)
    {
        compressed = false;
        payload = default;
        if (buffer.Length < GrpcProtocol.FrameHeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[GrpcProtocol.FrameHeaderSize];
        buffer.Slice(0, GrpcProtocol.FrameHeaderSize).CopyTo(header);
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (header[0] > 1)
        {
            throw new RpcException(StatusCode.Internal, $"Invalid compressed-flag byte {header[0]} in message frame; expected 0 or 1.");
        }

        if (length > maxSize)
        {
            throw new RpcException(StatusCode.ResourceExhausted,
                $"Received message exceeds the maximum configured message size ({length} > {maxSize} bytes).");
        }

        if (buffer.Length < GrpcProtocol.FrameHeaderSize + length)
        {
            return false;
        }

        compressed = header[0] == 1;
        payload = buffer.Slice(GrpcProtocol.FrameHeaderSize, length);
        buffer = buffer.Slice(GrpcProtocol.FrameHeaderSize + length);
        return true;
    }

    /// <summary>Decodes a payload per `grpc-encoding`, bounding the decompressed size.</summary>
    public static ReadOnlySequence<byte> Decode(ReadOnlySequence<byte> payload, bool compressed, string? encoding, int maxSize)
    {
        if (!compressed)
        {
            return payload;
        }

        if (encoding is null or "identity")
        {
            throw new RpcException(StatusCode.Internal,
                "Message has the compressed flag set but the call declared no grpc-encoding.");
        }

        using var input = new MemoryStream(payload.ToArray());
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        var chunk = new byte[8192];
        try
        {
            int read;
            while ((read = gzip.Read(chunk, 0, chunk.Length)) > 0)
            {
                output.Write(chunk, 0, read);
                if (output.Length > maxSize)
                {
                    throw new RpcException(StatusCode.ResourceExhausted,
                        $"Decompressed message exceeds the maximum configured message size ({maxSize} bytes).");
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new RpcException(StatusCode.Internal, "Message could not be decompressed with gzip.", e);
        }

        return new ReadOnlySequence<byte>(output.ToArray());
    }

    private static byte[] Gzip(ReadOnlySpan<byte> data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }

    public static T Parse<T>(MessageParser<T> parser, ReadOnlySequence<byte> data)
        where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(data);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new RpcException(StatusCode.Internal, $"Message is not a valid protobuf {typeof(T).Name}: {e.Message}", e);
        }
    }
}
