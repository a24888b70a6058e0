using System.Collections;
using System.Text;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;

namespace CredBroker.Server.Tests;

/// <summary>
/// Issue 15, "Also": a bounded, seeded fuzz over every RPC's string and token inputs (found by
/// protobuf reflection, so a new field or RPC is fuzzed too) against a production broker on Redis:
/// random, very long, control characters, trailing newlines, JWT-shaped garbage, deeply nested YAML,
/// non-UTF-8 bytes on the wire, and garbage credentials. Every answer is a status a caller can act on:
/// never UNKNOWN or INTERNAL, never an exception text or stack trace, always a message; an
/// INVALID_ARGUMENT leaves the store alone (no lease, no audit record); the broker keeps serving.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SecurityRpcFuzzTests
{
    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);

    private readonly List<string> _findings = [];
    private readonly Dictionary<StatusCode, int> _outcomes = [];
    private int _calls;

    [Test]
    public async Task EveryRpc_StringAndTokenInputs_AreRefusedCleanly_AndWriteNothingWhenInvalid()
    {
        using var redis = RedisServer.Start();
        await using var broker = new ProductionBroker();
        await broker.StartAsync(redis.ConnectionString);
        using var agentChannel = GrpcChannel.ForAddress(broker.AgentAddress);
        using var operatorChannel = GrpcChannel.ForAddress(broker.OperatorAddress);
        var agent = Bearer(broker.WorkloadToken("system:serviceaccount:support:triage", lifetime: TimeSpan.FromHours(1)));
        var admin = Bearer(broker.WorkloadToken(ProductionBroker.Operator, lifetime: TimeSpan.FromHours(1), audience: ProductionBroker.OperatorAudience));
        var store = new StoreProbe(new Operator.OperatorClient(operatorChannel), admin);

        // One real lease, so lease-id shaped inputs have something to miss.
        var begun = await new AgentBroker.AgentBrokerClient(agentChannel).BeginTaskAsync(
            new BeginTaskRequest { TaskId = "fuzz-anchor", Scopes = { "tickets:read" } }, agent);

        var random = new Random(1515);
        var services = new (ServiceDescriptor Service, GrpcChannel Channel, Metadata Credential)[]
        {
            (AgentBroker.Descriptor, agentChannel, agent),
            (TokenValidation.Descriptor, agentChannel, agent),
            (Operator.Descriptor, operatorChannel, admin),
        };
        foreach (var (service, channel, credential) in services)
        {
            foreach (var method in service.Methods)
            {
                var invoker = channel.CreateCallInvoker();
                var fields = StringFields(method.InputType).ToList();
                var pick = 0;
                foreach (var field in fields)
                {
                    // Every value class at least once per method, the rest by the seeded generator.
                    for (var i = 0; i < 3; i++)
                    {
                        var value = Value(random, pick++);
                        await CallAsync(invoker, method, credential, store, Encode(method.InputType, field, value.Text), $"{field.Name}={value.Name}");
                    }

                    await CallAsync(invoker, method, credential, store, NonUtf8(field, random), $"{field.Name}=non-UTF-8 bytes");
                }

                // Garbage credentials: never a crash, always UNAUTHENTICATED (or a clean refusal) with a reason.
                foreach (var (garbage, name) in GarbageCredentials(random))
                {
                    await CallAsync(invoker, method, new Metadata { { "authorization", garbage } }, store, [], $"authorization={name}", expectUnauthenticated: true);
                }
            }
        }

        TestContext.Out.WriteLine($"{_calls} calls: " + string.Join(", ", _outcomes.OrderBy(o => o.Key).Select(o => $"{o.Key} {o.Value}")));
        Assert.That(_findings, Is.Empty, string.Join(Environment.NewLine, _findings));
        Assert.That(_calls, Is.InRange(150, 1000), "a bounded fuzz of a few hundred calls");
        Assert.That(_outcomes.Keys, Is.SupersetOf(new[] { StatusCode.InvalidArgument, StatusCode.Unauthenticated, StatusCode.NotFound }), "the refusals the checks are about happened");

        // Still serving, and the anchor lease is untouched.
        var after = await new AgentBroker.AgentBrokerClient(agentChannel).BeginTaskAsync(
            new BeginTaskRequest { TaskId = "after-fuzz", Scopes = { "tickets:read" } }, agent);
        Assert.That(after.AccessToken, Is.Not.Empty);
        var anchor = await new Operator.OperatorClient(operatorChannel).GetLeaseAsync(new GetLeaseRequest { LeaseId = begun.LeaseId }, admin);
        Assert.That(anchor.State, Is.EqualTo("active"));
        Assert.That((await store.SnapshotAsync()).Intact, Is.True, "the audit chain still verifies");
    }

    private async Task CallAsync(
        CallInvoker invoker, MethodDescriptor method, Metadata credential, StoreProbe store, byte[] request, string what, bool expectUnauthenticated = false)
    {
        _calls++;
        var label = $"{method.FullName} {what}";
        var before = await store.SnapshotAsync();
        var rpc = new Method<byte[], byte[]>(
            method.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary, method.Service.FullName, method.Name, Raw, Raw);
        var options = new CallOptions(credential, DateTime.UtcNow.AddSeconds(20));
        RpcException? refusal = null;
        try
        {
            if (method.IsServerStreaming)
            {
                using var cancel = new CancellationTokenSource();
                using var call = invoker.AsyncServerStreamingCall(rpc, null, options.WithCancellationToken(cancel.Token), request);
                // The first message (or the end) is enough: a stream that answers is not broken.
                await call.ResponseStream.MoveNext(CancellationToken.None);
                await cancel.CancelAsync();
            }
            else
            {
                await invoker.AsyncUnaryCall(rpc, null, options, request);
            }
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && method.IsServerStreaming)
        {
            _outcomes[StatusCode.Cancelled] = _outcomes.GetValueOrDefault(StatusCode.Cancelled) + 1;
            return;
        }
        catch (RpcException e)
        {
            refusal = e;
        }

        var outcome = refusal?.StatusCode ?? StatusCode.OK;
        _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;
        if (refusal is null)
        {
            if (expectUnauthenticated)
            {
                _findings.Add($"{label}: a garbage credential was accepted");
            }

            return;
        }

        var detail = refusal.Status.Detail ?? string.Empty;
        if (refusal.StatusCode is StatusCode.Unknown or StatusCode.Internal or StatusCode.DataLoss or StatusCode.Unimplemented)
        {
            _findings.Add($"{label}: {refusal.StatusCode} '{Clip(detail)}'");
        }
        else if (detail.Trim().Length < 10 || detail.Contains("Exception", StringComparison.Ordinal) || detail.Contains("   at ", StringComparison.Ordinal)
            || detail.Contains("System.", StringComparison.Ordinal))
        {
            _findings.Add($"{label}: {refusal.StatusCode} with a message that does not say what to fix: '{Clip(detail)}'");
        }
        else if (expectUnauthenticated && refusal.StatusCode != StatusCode.Unauthenticated)
        {
            _findings.Add($"{label}: {refusal.StatusCode} instead of UNAUTHENTICATED: '{Clip(detail)}'");
        }
        else if (refusal.StatusCode == StatusCode.DeadlineExceeded && !method.IsServerStreaming)
        {
            _findings.Add($"{label}: no answer within 20 s");
        }

        if (refusal.StatusCode == StatusCode.InvalidArgument)
        {
            var after = await store.SnapshotAsync();
            if (after.Leases != before.Leases || after.AuditLength != before.AuditLength)
            {
                _findings.Add($"{label}: INVALID_ARGUMENT but the store changed (leases {before.Leases}→{after.Leases}, audit {before.AuditLength}→{after.AuditLength})");
            }
        }
    }

    private static Metadata Bearer(string token) => new() { { "authorization", "Bearer " + token } };

    /// <summary>Every string input of a request: string and repeated string fields, and string maps (key and value).</summary>
    private static IEnumerable<FieldDescriptor> StringFields(MessageDescriptor message) =>
        message.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.String
            || (f.IsMap && f.MessageType.FindFieldByNumber(1).FieldType == FieldType.String && f.MessageType.FindFieldByNumber(2).FieldType == FieldType.String));

    private static byte[] Encode(MessageDescriptor type, FieldDescriptor field, string value)
    {
        var message = (IMessage)Activator.CreateInstance(type.ClrType)!;
        if (field.IsMap)
        {
            var map = (IDictionary)field.Accessor.GetValue(message);
            map[value] = "prod";
            map["environment"] = value;
        }
        else if (field.IsRepeated)
        {
            var list = (IList)field.Accessor.GetValue(message);
            list.Add("tickets:read");
            list.Add(value);
        }
        else
        {
            field.Accessor.SetValue(message, value);
        }

        return message.ToByteArray();
    }

    /// <summary>The field (or a map entry's key) as length-delimited bytes that are not UTF-8: the wire allows them, protobuf strings do not.</summary>
    private static byte[] NonUtf8(FieldDescriptor field, Random random)
    {
        byte[][] invalid = [[0xC3, 0x28], [0xFF, 0xFE, 0x41], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0x61, 0x80, 0x62]];
        var bytes = invalid[random.Next(invalid.Length)];
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        output.WriteTag(field.FieldNumber, WireFormat.WireType.LengthDelimited);
        if (field.IsMap)
        {
            using var entry = new MemoryStream();
            var inner = new CodedOutputStream(entry);
            inner.WriteTag(1, WireFormat.WireType.LengthDelimited);
            inner.WriteBytes(ByteString.CopyFrom(bytes));
            inner.WriteTag(2, WireFormat.WireType.LengthDelimited);
            inner.WriteBytes(ByteString.CopyFrom(bytes));
            inner.Flush();
            output.WriteBytes(ByteString.CopyFrom(entry.ToArray()));
        }
        else
        {
            output.WriteBytes(ByteString.CopyFrom(bytes));
        }

        output.Flush();
        return buffer.ToArray();
    }

    private static (string Name, string Text) Value(Random random, int pick)
    {
        (string, Func<string>)[] classes =
        [
            ("empty", () => string.Empty),
            ("random printable", () => RandomText(random, random.Next(1, 80), ' ', '~')),
            ("random unicode", () => RandomText(random, random.Next(1, 80), '\u00A0', '\uD7FF')),
            ("10k characters", () => new string('a', 10_000)),
            ("70k characters (over the message limit)", () => new string('x', 70_000)),
            ("control characters", () => "ab\u0000c\u0007\u001b[31m\r\n"),
            ("trailing newline", () => "triage-agent\n"),
            ("lone surrogate", () => "a\uD800b"),
            ("JWT-shaped garbage", () => "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."),
            ("bad base64url JWT", () => "eyJ!!!.@@@.###"),
            ("many dots", () => new string('.', 5_000)),
            ("deep YAML flow", () => new string('[', 5_000) + new string(']', 5_000)),
            ("deep YAML block", () => string.Concat(Enumerable.Range(0, 300).Select(i => new string(' ', i) + "a:\n"))),
            ("YAML anchors", () => "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nd: [*c, *c, *c]\n"),
            ("path and wildcards", () => "../../etc/passwd*:*"),
            ("format strings", () => "{0}%s%n%x{{}}"),
        ];
        var (name, make) = pick < classes.Length ? classes[pick] : classes[random.Next(classes.Length)];
        return (name, make());
    }

    private static string RandomText(Random random, int length, char min, char max)
    {
        var text = new StringBuilder(length);
        for (var i = 0; i < length; i++)
        {
            text.Append((char)random.Next(min, max + 1));
        }

        return text.ToString();
    }

    private static IEnumerable<(string Value, string Name)> GarbageCredentials(Random random)
    {
        yield return ("Bearer " + RandomText(random, 40, '!', '~'), "random");
        yield return ("Bearer " + new string('A', 7_000), "7k characters");
        yield return ("Bearer e30.e30.", "unsigned JWT");
    }

    private static string Clip(string value) => value.Length <= 300 ? value : value[..300] + "…";

    /// <summary>What INVALID_ARGUMENT must not change: the number of leases and the audit chain's length.</summary>
    private sealed class StoreProbe(Operator.OperatorClient client, Metadata credential)
    {
        public async Task<(int Leases, long AuditLength, bool Intact)> SnapshotAsync()
        {
            var leases = await client.ListLeasesAsync(new ListLeasesRequest { PageSize = 500 }, credential);
            var audit = await client.VerifyAuditAsync(new VerifyAuditRequest(), credential);
            return (leases.Leases.Count, audit.LastSequence, audit.Intact);
        }
    }
}
