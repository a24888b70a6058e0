using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using CredBroker.Core.Audit;
using CredBroker.Core.Broker;
using CredBroker.Server.Hosting;

namespace CredBroker.Server.WebConsole.Webhooks;

/// <summary>
/// Tells approvers that a request is waiting: on every <c>approval.requested</c> audit record an
/// event is queued (bounded; the oldest is dropped when full, logged) and POSTed to each configured
/// endpoint as a CloudEvents 1.0 structured JSON event, signed with HMAC-SHA256 over
/// <c>timestamp + "." + body</c>, retried with exponential backoff and jitter until a 2xx
/// (at-least-once; receivers deduplicate by the event id, which is stable per approval).
/// </summary>
public sealed partial class ApprovalWebhooks : BackgroundService, IAuditObserver
{
    public const string EventType = "dev.credbroker.approval.requested";
    public const string SignatureHeader = "X-CredBroker-Signature";
    public const string TimestampHeader = "X-CredBroker-Timestamp";

    private readonly BrokerOptions.WebhookOptions _options;
    private readonly IReadOnlyList<(Uri Url, byte[] Key)> _endpoints;
    private readonly Uri _console;
    private readonly string _source;
    private readonly Func<LeaseAdministration?> _leases;
    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly ILogger<ApprovalWebhooks> _logger;
    private readonly Channel<AuditEvent> _queue;

    /// <param name="leases">Resolved when an event is sent (the lease administration itself depends on the audit service this observes).</param>
    internal ApprovalWebhooks(BrokerOptions options, Func<LeaseAdministration?> leases, HttpClient http, TimeProvider time, ILogger<ApprovalWebhooks> logger)
    {
        _options = options.Console.Webhooks;
        _endpoints = _options.Endpoints.Select(e => (new Uri(e.Url), ReadKey(e.SecretFile))).ToList();
        _console = options.ConsolePublicUrl;
        _source = _console.AbsoluteUri.TrimEnd('/');
        _leases = leases;
        _http = http;
        _time = time;
        _logger = logger;
        _queue = Channel.CreateBounded<AuditEvent>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        }, dropped => LogDropped(_logger, dropped.LeaseId));
    }

    public static void Add(IServiceCollection services, BrokerOptions options)
    {
        if (options.Console.Webhooks.Endpoints.Count == 0)
        {
            return;
        }

        services.AddSingleton(sp => new ApprovalWebhooks(options, sp.GetService<LeaseAdministration>,
            new HttpClient { Timeout = options.Console.Webhooks.Timeout }, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ApprovalWebhooks>>()));
        services.AddSingleton<IAuditObserver>(sp => sp.GetRequiredService<ApprovalWebhooks>());
        services.AddHostedService(sp => sp.GetRequiredService<ApprovalWebhooks>());
    }

    public void Appended(AuditRecord record, AuditEvent auditEvent, TimeSpan elapsed)
    {
        if (auditEvent.Type == AuditEventType.ApprovalRequested)
        {
            // Never blocks: when full the oldest waiting event is dropped (and logged).
            _queue.Writer.TryWrite(auditEvent);
        }
    }

    public void AppendFailed(AuditEvent auditEvent, Exception error)
    {
    }

    public void SinkFailed(Exception error)
    {
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var approval in _queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                var body = await BodyAsync(approval, stoppingToken);
                // Endpoints are delivered to independently: a slow or failing one does not hold up the others' copy.
                await Task.WhenAll(_endpoints.Select(e => DeliverAsync(e.Url, e.Key, approval.LeaseId, body, stoppingToken)));
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // A notification must never take the broker down (a faulted BackgroundService stops the host).
                LogFailed(_logger, e, approval.LeaseId);
            }
        }
    }

    /// <summary>The CloudEvents 1.0 structured-mode JSON for one approval request.</summary>
    internal async Task<byte[]> BodyAsync(AuditEvent approval, CancellationToken cancellationToken)
    {
        string? purpose = null;
        DateTimeOffset? expires = null;
        if (_leases() is { } leases)
        {
            try
            {
                var lease = await leases.GetAsync(approval.LeaseId, cancellationToken);
                (purpose, expires) = (lease.Purpose, lease.Deadline);
            }
            catch (Exception e) when (e is BrokerException or StoreUnavailableException)
            {
                // The event still goes out with what the audit record holds.
            }
        }

        var link = new Uri(_console, "approvals#t-" + Uri.EscapeDataString(approval.LeaseId));
        var cloudEvent = new Dictionary<string, object?>
        {
            ["specversion"] = "1.0",
            ["type"] = EventType,
            ["source"] = _source,
            ["id"] = "approval.requested/" + approval.LeaseId,
            ["time"] = approval.Time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
            ["subject"] = approval.LeaseId,
            ["datacontenttype"] = "application/json",
            ["data"] = new Dictionary<string, object?>
            {
                ["approval_id"] = approval.LeaseId,
                ["agent_id"] = approval.AgentId,
                ["owner"] = approval.Owner,
                ["task_id"] = approval.TaskId,
                ["purpose"] = purpose,
                ["audience"] = approval.Audience,
                ["requested_scopes"] = approval.ScopesRequested,
                ["rule_ids"] = approval.RuleIds,
                ["reason"] = approval.Reason,
                ["requested_at"] = approval.Time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
                ["expires_at"] = expires?.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
                ["console_url"] = link.AbsoluteUri,
            },
        };
        return JsonSerializer.SerializeToUtf8Bytes(cloudEvent);
    }

    /// <summary><c>v1=</c> + lower-case hex HMAC-SHA256(key, timestamp + "." + body).</summary>
    public static string Sign(byte[] key, string timestamp, byte[] body)
    {
        var prefix = Encoding.ASCII.GetBytes(timestamp + ".");
        var signed = new byte[prefix.Length + body.Length];
        prefix.CopyTo(signed, 0);
        body.CopyTo(signed, prefix.Length);
        return "v1=" + Convert.ToHexStringLower(HMACSHA256.HashData(key, signed));
    }

    private async Task DeliverAsync(Uri url, byte[] key, string approvalId, byte[] body, CancellationToken cancellationToken)
    {
        var backoff = _options.InitialBackoff;
        for (var attempt = 1; ; attempt++)
        {
            string outcome;
            try
            {
                // Signed afresh per attempt: the timestamp says when this copy was sent.
                var timestamp = _time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/cloudevents+json") { CharSet = "utf-8" };
                request.Headers.Add(TimestampHeader, timestamp);
                request.Headers.Add(SignatureHeader, Sign(key, timestamp, body));
                request.Headers.Add("X-CredBroker-Delivery", attempt.ToString(CultureInfo.InvariantCulture));
                using var response = await _http.SendAsync(request, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    LogDelivered(_logger, approvalId, url.GetLeftPart(UriPartial.Path), attempt);
                    return;
                }

                outcome = $"HTTP {(int)response.StatusCode}";
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // Network errors, timeouts, a refused connection: retried like an error status.
                outcome = e.GetType().Name;
            }

            if (attempt >= _options.MaxAttempts)
            {
                LogGaveUp(_logger, approvalId, url.GetLeftPart(UriPartial.Path), attempt, outcome);
                return;
            }

            LogRetry(_logger, approvalId, url.GetLeftPart(UriPartial.Path), attempt, outcome, backoff);
            // Full jitter over [backoff/2, backoff], doubling up to MaxBackoff.
            var delay = backoff / 2 + backoff / 2 * Random.Shared.NextDouble();
            await Task.Delay(delay, _time, cancellationToken);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
        }
    }

    private static byte[] ReadKey(string file)
    {
        var raw = File.ReadAllBytes(file);
        var text = Encoding.ASCII.GetString(raw).Trim();
        var decoded = new byte[raw.Length];
        var key = Convert.TryFromBase64String(text, decoded, out var length) && length >= 32 ? decoded[..length] : Encoding.UTF8.GetBytes(text);
        return key.Length >= 32 ? key : throw new StartupException($"{file}: a webhook signing secret must be at least 32 bytes.");
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 190, Level = LogLevel.Information, Message = "Approval webhook for {ApprovalId} delivered to {Url} (attempt {Attempt})")]
    private static partial void LogDelivered(ILogger logger, string approvalId, string url, int attempt);

    [LoggerMessage(EventId = 191, Level = LogLevel.Warning, Message = "Approval webhook for {ApprovalId} to {Url} failed (attempt {Attempt}: {Outcome}); retrying in about {Backoff}")]
    private static partial void LogRetry(ILogger logger, string approvalId, string url, int attempt, string outcome, TimeSpan backoff);

    [LoggerMessage(EventId = 192, Level = LogLevel.Error, Message = "Approval webhook for {ApprovalId} to {Url} gave up after {Attempt} attempts ({Outcome})")]
    private static partial void LogGaveUp(ILogger logger, string approvalId, string url, int attempt, string outcome);

    [LoggerMessage(EventId = 194, Level = LogLevel.Error, Message = "Approval webhook for {ApprovalId} could not be prepared or sent")]
    private static partial void LogFailed(ILogger logger, Exception exception, string approvalId);

    [LoggerMessage(EventId = 193, Level = LogLevel.Error, Message = "Approval webhook queue full: the notification for {ApprovalId} was dropped (CredBroker:Console:Webhooks:QueueCapacity)")]
    private static partial void LogDropped(ILogger logger, string approvalId);
}
