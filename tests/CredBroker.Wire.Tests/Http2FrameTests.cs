using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CredBroker.Wire.Tests;

/// <summary>Malformed HTTP/2 on a raw socket: the broker ends that connection (GOAWAY or close) and keeps serving everyone else.</summary>
[TestFixture]
public sealed class Http2FrameTests : WireTest
{
    private static readonly byte[] Preface = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    private const byte Data = 0x0, Headers = 0x1, Settings = 0x4, Ping = 0x6, WindowUpdate = 0x8;

    private static byte[] Frame(byte type, byte flags, uint stream, byte[] payload, int? declaredLength = null)
    {
        var frame = new byte[9 + payload.Length];
        var length = declaredLength ?? payload.Length;
        frame[0] = (byte)(length >> 16);
        frame[1] = (byte)(length >> 8);
        frame[2] = (byte)length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(5), stream);
        payload.CopyTo(frame, 9);
        return frame;
    }

    public static IEnumerable<TestCaseData> Malformed()
    {
        var emptySettings = Frame(Settings, 0, 0, []);
        yield return new TestCaseData((object)Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).SetName("{m}(HTTP/1.1 instead of the preface)");
        yield return new TestCaseData((object)Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")).SetName("{m}(corrupt preface)");
        yield return new TestCaseData((object)Concat(Preface, Frame(Settings, 0, 0, [0, 1, 0, 0, 0]))).SetName("{m}(SETTINGS length not a multiple of 6)");
        yield return new TestCaseData((object)Concat(Preface, Frame(Settings, 0, 1, []))).SetName("{m}(SETTINGS on a stream)");
        yield return new TestCaseData((object)Concat(Preface, emptySettings, Frame(Ping, 0, 0, [1, 2, 3]))).SetName("{m}(PING of 3 bytes)");
        yield return new TestCaseData((object)Concat(Preface, emptySettings, Frame(WindowUpdate, 0, 0, [0, 0, 0, 0]))).SetName("{m}(WINDOW_UPDATE of 0)");
        yield return new TestCaseData((object)Concat(Preface, emptySettings, Frame(Data, 0, 0, [1, 2, 3]))).SetName("{m}(DATA on stream 0)");
        yield return new TestCaseData((object)Concat(Preface, emptySettings, Frame(Headers, 0x4, 1, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))).SetName("{m}(HEADERS with a garbage HPACK block)");
        yield return new TestCaseData((object)Concat(Preface, emptySettings, Frame(Headers, 0x4, 2, [0x83]))).SetName("{m}(HEADERS on an even stream id)");
        yield return new TestCaseData((object)Concat(Preface, emptySettings, Frame(Data, 0, 1, [], declaredLength: 0xFFFFFF))).SetName("{m}(frame over the max frame size)");
    }

    [TestCaseSource(nameof(Malformed))]
    public async Task MalformedHttp2_EndsThatConnection_AndTheBrokerKeepsServing(byte[] bytes)
    {
        using var established = H2c.Client();
        await AssertServingAsync(Broker.Agent, established);

        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Broker.Agent.Port), Bounded);
            await socket.SendAsync(bytes, SocketFlags.None, Bounded);
            Assert.That(await EndedByServerAsync(socket), Is.True, "the broker ends a connection that broke the protocol (GOAWAY or close)");
        }

        await AssertServingAsync(Broker.Agent);
        await AssertServingAsync(Broker.Agent, established);
        await AssertServingAsync(Broker.Operator);
    }

    /// <summary>Reads frames until a GOAWAY or the close (bounded); the server's SETTINGS and ACKs before it are skipped.</summary>
    private async Task<bool> EndedByServerAsync(Socket socket)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Bounded);
        limit.CancelAfter(TimeSpan.FromSeconds(30));
        var received = new List<byte>();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, limit.Token);
                if (read == 0)
                {
                    return true;
                }

                received.AddRange(buffer.AsSpan(0, read));
                if (HasGoAway(received.ToArray()))
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true; // reset by the server
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static bool HasGoAway(byte[] bytes)
    {
        var at = 0;
        while (bytes.Length - at >= 9)
        {
            var length = (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2];
            if (bytes[at + 3] == 0x7)
            {
                return true;
            }

            at += 9 + length;
        }

        return false;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}
