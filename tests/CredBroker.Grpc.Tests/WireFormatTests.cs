using CredBroker.Grpc.Internal;
using CredBroker.Testing.Interop;

namespace CredBroker.Grpc.Tests;

public sealed class WireFormatTests
{
    [TestCase("1H", 36_000_000_000L)]
    [TestCase("2M", 1_200_000_000L)]
    [TestCase("3S", 30_000_000L)]
    [TestCase("250m", 2_500_000L)]
    [TestCase("7u", 70L)]
    [TestCase("1000n", 10L)]
    [TestCase("99999999S", 999_999_990_000_000L)]
    [TestCase("0m", 0L)]
    public void Timeout_EveryUnitParses(string value, long ticks)
    {
        Assert.That(GrpcTimeout.TryParse(value, out var timeout), Is.True);
        Assert.That(timeout.Ticks, Is.EqualTo(ticks));
    }

    [TestCase("")]
    [TestCase("S")]
    [TestCase("100")]
    [TestCase("123456789S")]
    [TestCase("1s")]
    [TestCase("-1S")]
    [TestCase("1.5S")]
    [TestCase(" 1S")]
    [TestCase("1x")]
    public void Timeout_MalformedValuesAreRejected(string value) =>
        Assert.That(GrpcTimeout.TryParse(value, out _), Is.False);

    [TestCase(50)]
    [TestCase(1500)]
    [TestCase(86_400_000)]
    public void Timeout_FormatRoundTripsWithinEightDigits(int milliseconds)
    {
        var formatted = GrpcTimeout.Format(TimeSpan.FromMilliseconds(milliseconds));
        Assert.That(formatted.Length, Is.LessThanOrEqualTo(9));
        Assert.That(GrpcTimeout.TryParse(formatted, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(TimeSpan.FromMilliseconds(milliseconds)));
    }

    [Test]
    public void StatusMessage_PercentEncodingRoundTripsUnicodeAndPercent()
    {
        const string message = "denied: 50% of \"scopes\" — ünïcode\nnewline";
        var encoded = GrpcProtocol.EncodeMessage(message);
        Assert.That(encoded.All(c => c is >= ' ' and <= '~'), Is.True);
        Assert.That(GrpcProtocol.DecodeMessage(encoded), Is.EqualTo(message));
    }

    [TestCase("grpc-status")]
    [TestCase("grpc-custom")]
    [TestCase(":path")]
    [TestCase("content-type")]
    [TestCase("te")]
    [TestCase("Upper")]
    [TestCase("spa ce")]
    [TestCase("")]
    public void Metadata_ReservedOrMalformedNamesAreRefused(string name) =>
        Assert.Throws(Is.InstanceOf<ArgumentException>(), () => new Metadata().Add(name, "v"));

    [Test]
    public void Metadata_BinaryAndAsciiRulesAreEnforced()
    {
        var metadata = new Metadata();
        Assert.Throws<ArgumentException>(() => metadata.Add("x-data-bin", "text for a -bin name"));
        Assert.Throws<ArgumentException>(() => metadata.Add("x-data", [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => metadata.Add("x-text", "line\nbreak"));
        Assert.Throws<ArgumentException>(() => metadata.Add("x-text", new string('a', Metadata.MaxValueLength + 1)));
        metadata.Add("x-text", "fine");
        metadata.Add("x-data-bin", [0, 255]);
        Assert.That(metadata.Count, Is.EqualTo(2));
    }

    [Test]
    public void Frame_GzipRoundTripsAndBoundsTheDecompressedSize()
    {
        var message = new EchoRequest { Message = new string('z', 10_000) };
        var frame = MessageCodec.Frame(message, 64 * 1024, gzip: true);
        Assert.That(frame[0], Is.EqualTo(1));
        Assert.That(frame.Length, Is.LessThan(1000), "10 000 repeated bytes compress well");

        var buffer = new System.Buffers.ReadOnlySequence<byte>(frame);
        Assert.That(MessageCodec.TryReadFrame(ref buffer, 64 * 1024, out var compressed, out var payload), Is.True);
        var decoded = MessageCodec.Decode(payload, compressed, "gzip", 64 * 1024);
        Assert.That(MessageCodec.Parse(EchoRequest.Parser, decoded), Is.EqualTo(message));

        var tooSmall = Assert.Throws<RpcException>(() => MessageCodec.Decode(payload, compressed, "gzip", 1000));
        Assert.That(tooSmall!.StatusCode, Is.EqualTo(StatusCode.ResourceExhausted));
    }
}
