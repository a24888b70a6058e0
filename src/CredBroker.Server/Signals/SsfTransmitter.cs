using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Signals;
using CredBroker.Core.Tokens;
using CredBroker.Server.Hosting;
using CredBroker.Server.Services;

namespace CredBroker.Server.Signals;

/// <summary>A refusal of an SSF request: HTTP status, error code and a message that says what to fix.</summary>
public sealed class SsfException(int status, string error, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Error { get; } = error;
}

/// <summary>
/// The SSF transmitter's logic behind the HTTP endpoints (<see cref="SsfEndpoints"/>): stream
/// configuration and status for authenticated receivers, RFC 8936 poll with acknowledgements, and
/// the SETs both delivery methods send. Events come from the revocation log WatchRevocations reads.
/// </summary>
public sealed class SsfTransmitter(ISsfStreamStore streams, ILeaseStore log, ISigningKeys keys, RevocationNotifier notifier, BrokerOptions options, TimeProvider time)
{
    public static readonly string[] EventsSupported = [SsfNames.SessionRevoked];
    private readonly BrokerOptions.SsfOptions _ssf = options.Ssf;
    private readonly string _base = options.Issuer.TrimEnd('/');

    /// <summary>Raised after a stream was created, changed or deleted here, so this replica's pusher looks at once.</summary>
    public event Action? StreamsChanged;

    public string Issuer => options.Issuer;

    public ISsfStreamStore Streams => streams;

    public ILeaseStore Log => log;

    public string ConfigurationEndpoint => _base + "/ssf/streams";

    public string PollEndpoint(string streamId) => $"{_base}/ssf/poll/{streamId}";

    public JsonObject Metadata() => new()
    {
        ["spec_version"] = SsfNames.SpecVersion,
        ["issuer"] = options.Issuer,
        ["jwks_uri"] = _base + "/.well-known/jwks.json",
        ["delivery_methods_supported"] = new JsonArray(SsfNames.PushDelivery, SsfNames.PollDelivery),
        ["configuration_endpoint"] = ConfigurationEndpoint,
        ["status_endpoint"] = _base + "/ssf/status",
        ["authorization_schemes"] = new JsonArray(new JsonObject { ["spec_urn"] = "urn:ietf:rfc:6750" }),
        ["default_subjects"] = "ALL",
    };

    /// <summary>The stream configuration as SSF 1.0 returns it (authorization_header is write-only, never echoed).</summary>
    public JsonObject Describe(SsfStream s)
    {
        var delivery = new JsonObject
        {
            ["method"] = s.DeliveryMethod,
            ["endpoint_url"] = s.DeliveryMethod == SsfNames.PollDelivery ? PollEndpoint(s.StreamId) : s.EndpointUrl,
        };
        var o = new JsonObject
        {
            ["stream_id"] = s.StreamId,
            ["iss"] = options.Issuer,
            ["aud"] = s.Audience,
            ["events_supported"] = new JsonArray([.. EventsSupported.Select(e => (JsonNode)e)]),
            ["events_requested"] = new JsonArray([.. s.EventsRequested.Select(e => (JsonNode)e)]),
            ["events_delivered"] = new JsonArray([.. Delivered(s.EventsRequested).Select(e => (JsonNode)e)]),
            ["delivery"] = delivery,
        };
        if (s.Description is { } description)
        {
            o["description"] = description;
        }

        return o;
    }

    private static IEnumerable<string> Delivered(IReadOnlyList<string> requested) =>
        requested.Count == 0 ? EventsSupported : EventsSupported.Where(e => requested.Contains(e, StringComparer.Ordinal));

    public async Task<IReadOnlyList<SsfStream>> ListAsync(SsfReceiver receiver, CancellationToken cancellationToken) =>
        (await Store(() => streams.ListAsync(cancellationToken))).Where(s => s.Receiver == receiver.Id).OrderBy(s => s.CreatedAt).ToList();

    /// <summary>The receiver's stream; another receiver's stream is reported as not found (its existence is not revealed).</summary>
    public async Task<SsfStream> GetAsync(SsfReceiver receiver, string? streamId, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(streamId) || streamId.Length > 64)
        {
            throw new SsfException(400, "invalid_request", "stream_id is required.");
        }

        var stream = await Store(() => streams.GetAsync(streamId, cancellationToken));
        return stream is not null && stream.Receiver == receiver.Id
            ? stream
            : throw new SsfException(404, "not_found", $"No stream '{streamId}' for this receiver.");
    }

    public async Task<SsfStream> CreateAsync(SsfReceiver receiver, JsonObject body, CancellationToken cancellationToken)
    {
        var existing = await ListAsync(receiver, cancellationToken);
        if (existing.Count >= _ssf.MaxStreamsPerReceiver)
        {
            throw new SsfException(409, "conflict", $"This receiver already has {existing.Count} streams (the limit is {_ssf.MaxStreamsPerReceiver}); delete one first.");
        }

        var stream = Apply(new SsfStream
        {
            StreamId = NewStreamId(),
            Receiver = receiver.Id,
            Audience = receiver.Audience,
            DeliveryMethod = SsfNames.PollDelivery,
            CreatedAt = time.GetUtcNow(),
        }, body, replace: true);
        if (!await Store(() => streams.TrySaveAsync(stream, 0, cancellationToken)))
        {
            throw new SsfException(409, "conflict", "The stream id collided; retry.");
        }

        StreamsChanged?.Invoke();
        return stream with { Version = 1 };
    }

    /// <summary>PATCH (only the given members change) or PUT (the configuration is replaced).</summary>
    public async Task<SsfStream> UpdateAsync(SsfReceiver receiver, JsonObject body, bool replace, CancellationToken cancellationToken)
    {
        var id = OptionalString(body, "stream_id");
        for (var attempt = 0; ; attempt++)
        {
            var stream = await GetAsync(receiver, id, cancellationToken);
            var updated = Apply(stream, body, replace);
            if (await Store(() => streams.TrySaveAsync(updated, stream.Version, cancellationToken)))
            {
                StreamsChanged?.Invoke();
                return updated with { Version = stream.Version + 1 };
            }

            if (attempt >= 10)
            {
                throw new SsfException(409, "conflict", "The stream changed concurrently; retry.");
            }
        }
    }

    public async Task DeleteAsync(SsfReceiver receiver, string? streamId, CancellationToken cancellationToken)
    {
        var stream = await GetAsync(receiver, streamId, cancellationToken);
        await Store(() => streams.DeleteAsync(stream.StreamId, cancellationToken));
        StreamsChanged?.Invoke();
    }

    public async Task<SsfStream> SetStatusAsync(SsfReceiver receiver, JsonObject body, CancellationToken cancellationToken)
    {
        var id = OptionalString(body, "stream_id");
        var status = OptionalString(body, "status");
        if (!SsfNames.IsStatus(status))
        {
            throw new SsfException(400, "invalid_request", "status must be 'enabled', 'paused' or 'disabled'.");
        }

        var reason = OptionalString(body, "reason");
        for (var attempt = 0; ; attempt++)
        {
            var stream = await GetAsync(receiver, id, cancellationToken);
            var updated = stream with { Status = status!, StatusReason = reason };
            if (stream.Status == SsfNames.Disabled && status != SsfNames.Disabled)
            {
                // A disabled stream holds no events: it resumes at the tail.
                updated = updated with { Cursor = (await Store(() => log.CurrentRevocationCursorAsync(cancellationToken))).ToString(), AckedAhead = [] };
            }

            if (await Store(() => streams.TrySaveAsync(updated, stream.Version, cancellationToken)))
            {
                StreamsChanged?.Invoke();
                return updated;
            }

            if (attempt >= 10)
            {
                throw new SsfException(409, "conflict", "The stream changed concurrently; retry.");
            }
        }
    }

    /// <summary>
    /// RFC 8936 poll: applies <c>ack</c> and <c>setErrs</c> (both acknowledge: a SET the receiver
    /// rejected is not redelivered), then returns up to <c>maxEvents</c> undelivered SETs, waiting
    /// for events (up to CredBroker:Ssf:MaxLongPoll) unless <c>returnImmediately</c>.
    /// </summary>
    public async Task<JsonObject> PollAsync(SsfReceiver receiver, string streamId, JsonObject body, CancellationToken cancellationToken)
    {
        var acks = StringArray(body, "ack");
        if (body["setErrs"] is JsonObject errors)
        {
            acks.AddRange(errors.Select(e => e.Key));
        }
        else if (body["setErrs"] is not null)
        {
            throw new SsfException(400, "invalid_request", "setErrs must be an object keyed by jti.");
        }

        var maxEvents = _ssf.MaxEventsPerPoll;
        if (body["maxEvents"] is { } maxNode)
        {
            if (maxNode.GetValueKind() != JsonValueKind.Number || !maxNode.AsValue().TryGetValue<int>(out maxEvents) || maxEvents < 0)
            {
                throw new SsfException(400, "invalid_request", "maxEvents must be a non-negative integer.");
            }

            maxEvents = Math.Min(maxEvents, _ssf.MaxEventsPerPoll);
        }

        var returnImmediately = body["returnImmediately"] switch
        {
            null => false,
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            _ => throw new SsfException(400, "invalid_request", "returnImmediately must be a boolean."),
        };

        var stream = await GetAsync(receiver, streamId, cancellationToken);
        if (stream.DeliveryMethod != SsfNames.PollDelivery)
        {
            throw new SsfException(400, "invalid_request", "This stream is delivered by push (urn:ietf:rfc:8935), not poll.");
        }

        if (acks.Count > 0)
        {
            stream = await AcknowledgeAsync(stream, acks, cancellationToken);
        }

        var deadline = time.GetUtcNow() + _ssf.MaxLongPoll;
        using var watching = notifier.Watch();
        while (true)
        {
            var changed = notifier.NextChange;
            var batch = stream.Status == SsfNames.Enabled
                ? await Store(() => SsfFeed.ReadAsync(log, stream, Math.Max(maxEvents, 1), cancellationToken))
                : new SsfBatch([], false, false);
            var remaining = deadline - time.GetUtcNow();
            if (batch.Events.Count > 0 || returnImmediately || maxEvents == 0 || remaining <= TimeSpan.Zero)
            {
                var sets = new JsonObject();
                foreach (var p in maxEvents == 0 ? [] : batch.Events)
                {
                    sets[p.Jti] = Sign(stream, p);
                }

                return new JsonObject
                {
                    ["sets"] = sets,
                    ["moreAvailable"] = batch.MoreAvailable || maxEvents == 0 && batch.Events.Count > 0,
                };
            }

            try
            {
                await changed.WaitAsync(remaining < _ssf.StreamRefreshInterval ? remaining : _ssf.StreamRefreshInterval, cancellationToken);
            }
            catch (TimeoutException)
            {
            }

            stream = await GetAsync(receiver, streamId, cancellationToken);
        }
    }

    /// <summary>Moves the stream's cursor past <paramref name="jtis"/> (compare-and-set, retried on concurrent writers).</summary>
    public async Task<SsfStream> AcknowledgeAsync(SsfStream stream, IReadOnlyCollection<string> jtis, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var updated = await Store(() => SsfFeed.AcknowledgeAsync(log, stream, jtis, cancellationToken));
            if (ReferenceEquals(updated, stream) || await Store(() => streams.TrySaveAsync(updated, stream.Version, cancellationToken)))
            {
                return ReferenceEquals(updated, stream) ? stream : updated with { Version = stream.Version + 1 };
            }

            if (attempt >= 20)
            {
                throw new SsfException(409, "conflict", "The stream changed concurrently; retry the acknowledgement.");
            }

            stream = await Store(() => streams.GetAsync(stream.StreamId, cancellationToken))
                ?? throw new SsfException(404, "not_found", $"The stream '{stream.StreamId}' was deleted.");
        }
    }

    /// <summary>The SET for one pending event, signed with the broker's current key.</summary>
    public string Sign(SsfStream stream, SsfPending pending) =>
        SecurityEventTokens.Create(keys.Current, options.Issuer, stream.Audience, pending.Jti, pending.Event, time.GetUtcNow());

    /// <summary>Validates and applies a stream configuration request (the receiver may set events_requested, delivery, description).</summary>
    private SsfStream Apply(SsfStream stream, JsonObject body, bool replace)
    {
        foreach (var readOnly in new[] { "iss", "aud", "events_supported", "events_delivered" })
        {
            if (body[readOnly] is { } value && !JsonNode.DeepEquals(value, Describe(stream)[readOnly]))
            {
                throw new SsfException(400, "invalid_request", $"{readOnly} is set by the transmitter and cannot be changed.");
            }
        }

        if (body.ContainsKey("events_requested") || replace)
        {
            var requested = StringArray(body, "events_requested");
            stream = stream with { EventsRequested = requested.Distinct(StringComparer.Ordinal).Take(32).ToList() };
        }

        if (body.ContainsKey("description") || replace)
        {
            var description = OptionalString(body, "description");
            if (description?.Length > 256)
            {
                throw new SsfException(400, "invalid_request", "description is limited to 256 characters.");
            }

            stream = stream with { Description = description };
        }

        if (body["delivery"] is JsonObject delivery)
        {
            var method = OptionalString(delivery, "method") ?? stream.DeliveryMethod;
            if (method == SsfNames.PollDelivery)
            {
                var url = OptionalString(delivery, "endpoint_url");
                if (url is not null && url != PollEndpoint(stream.StreamId))
                {
                    throw new SsfException(400, "invalid_request", "For poll delivery the transmitter supplies endpoint_url; omit it.");
                }

                stream = stream with { DeliveryMethod = method, EndpointUrl = null, AuthorizationHeader = null };
            }
            else if (method == SsfNames.PushDelivery)
            {
                var url = OptionalString(delivery, "endpoint_url") ?? (stream.DeliveryMethod == SsfNames.PushDelivery ? stream.EndpointUrl : null)
                    ?? throw new SsfException(400, "invalid_request", "Push delivery (urn:ietf:rfc:8935) needs delivery.endpoint_url.");
                CheckPushEndpoint(url);
                var authorization = delivery.ContainsKey("authorization_header") ? OptionalString(delivery, "authorization_header") : stream.AuthorizationHeader;
                if (authorization is { Length: > 4096 } || authorization?.Any(char.IsControl) == true)
                {
                    throw new SsfException(400, "invalid_request", "delivery.authorization_header must be one header value of at most 4096 characters.");
                }

                stream = stream with { DeliveryMethod = method, EndpointUrl = url, AuthorizationHeader = authorization };
            }
            else
            {
                throw new SsfException(400, "invalid_request", $"delivery.method must be {SsfNames.PushDelivery} (push) or {SsfNames.PollDelivery} (poll).");
            }
        }
        else if (body["delivery"] is not null)
        {
            throw new SsfException(400, "invalid_request", "delivery must be an object.");
        }

        return stream;
    }

    private void CheckPushEndpoint(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || url.Length > 2048 || uri.UserInfo.Length > 0 || uri.Fragment.Length > 0
            || !(uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp && _ssf.AllowHttpPushEndpoints))
        {
            throw new SsfException(400, "invalid_request",
                "delivery.endpoint_url must be an absolute https URL without user info or fragment" + (_ssf.AllowHttpPushEndpoints ? " (or http)." : " (http only with CredBroker:Ssf:AllowHttpPushEndpoints)."));
        }
    }

    private static string NewStreamId() => System.Buffers.Text.Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(12));

    private static string? OptionalString(JsonObject body, string name) => body[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw new SsfException(400, "invalid_request", $"{name} must be a string."),
    };

    private static List<string> StringArray(JsonObject body, string name)
    {
        if (body[name] is null)
        {
            return [];
        }

        if (body[name] is not JsonArray array || array.Count > 10_000
            || array.Any(i => i is null || i.GetValueKind() != JsonValueKind.String || i.GetValue<string>().Length > 512))
        {
            throw new SsfException(400, "invalid_request", $"{name} must be an array of strings.");
        }

        return array.Select(i => i!.GetValue<string>()).ToList();
    }

    private static async Task<T> Store<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (StoreUnavailableException e)
        {
            throw new SsfException(503, "temporarily_unavailable", $"The stream store or revocation log is unavailable ({e.Message}); retry.");
        }
    }
}
