using System.IO.Compression;
using Grpc.Core;
using Grpc.Net.Compression;

namespace CredBroker.Server.Rpc;

/// <summary>
/// gzip for gRPC messages whose decompression stops at the receive limit: a small compressed bomb
/// never inflates past <c>maxDecompressedSize</c> bytes, and the call ends RESOURCE_EXHAUSTED.
/// (The library's own gzip provider inflates the whole message before checking its size.)
/// </summary>
public sealed class BoundedGzipCompressionProvider(int maxDecompressedSize) : ICompressionProvider
{
    public string EncodingName => "gzip";

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) =>
        new GZipStream(stream, compressionLevel ?? CompressionLevel.Fastest, leaveOpen: true);

    public Stream CreateDecompressionStream(Stream stream) =>
        new BoundedStream(new GZipStream(stream, CompressionMode.Decompress), maxDecompressedSize);

    private sealed class BoundedStream(Stream inner, int limit) : Stream
    {
        private long _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => _read;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => Count(inner.Read(buffer[..Room(buffer.Length)]));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer[..Room(buffer.Length)], cancellationToken));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        /// <summary>Reads at most one byte past the limit, enough to tell "exactly at" from "over".</summary>
        private int Room(int wanted) => (int)Math.Min(wanted, limit + 1L - _read);

        private int Count(int read)
        {
            _read += read;
            return _read > limit
                ? throw RpcErrors.Create(StatusCode.ResourceExhausted, $"The request message inflates past the {limit}-byte receive limit; send a smaller message.", "MESSAGE_TOO_LARGE")
                : read;
        }
    }
}
