using System.Net.Http.Headers;
using System.Text.Json;
using CredBroker.Core.Broker;
using CredBroker.Core.Signals;
using CredBroker.Server.Hosting;
using CredBroker.Server.Services;
using Microsoft.Extensions.Hosting;

namespace CredBroker.Server.Signals;

/// <summary>
/// RFC 8935 push delivery: one worker per enabled push stream POSTs each SET
/// (<c>application/secevent+jwt</c>) to the receiver's endpoint, in log order. 202 (any 2xx)
/// acknowledges it; 400 with an RFC 8935 error is a final rejection (logged, not retried); anything
/// else (no answer, timeout, 5xx, 401/403/429) is retried with exponential backoff. The stream's
/// cursor moves only past acknowledged SETs and lives in the stream store, so delivery resumes after
/// a receiver outage or a broker restart. One replica at a time pushes a stream (a renewed claim).
/// </summary>
public sealed class SsfPushService(SsfTransmitter transmitter, RevocationNotifier notifier, BrokerOptions options, TimeProvider time, ILogger<SsfPushService> log) : BackgroundService
{
    private const int BatchSize = 100;
    private readonly BrokerOptions.SsfOptions _ssf = options.Ssf;
    private readonly string _replica = Guid.NewGuid().ToString("N");
    private readonly Dictionary<string, (Task Task, CancellationTokenSource Stop)> _workers = new(StringComparer.Ordinal);
    private TaskCompletionSource _poke = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private HttpClient Http { get; } = new(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(2), UseCookies = false })
    {
        Timeout = options.Ssf.PushTimeout,
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        transmitter.StreamsChanged += Poke;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var poked = Volatile.Read(ref _poke).Task;
                try
                {
                    var streams = await transmitter.Streams.ListAsync(stoppingToken);
                    var wanted = streams.Where(s => s.DeliveryMethod == SsfNames.PushDelivery && s.Status == SsfNames.Enabled).Select(s => s.StreamId).ToHashSet(StringComparer.Ordinal);
                    foreach (var (id, worker) in _workers.Where(w => !wanted.Contains(w.Key) || w.Value.Task.IsCompleted).ToList())
                    {
                        await worker.Stop.CancelAsync();
                        worker.Stop.Dispose();
                        _workers.Remove(id);
                    }

                    foreach (var id in wanted.Where(id => !_workers.ContainsKey(id)))
                    {
                        var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                        _workers[id] = (Task.Run(() => PushAsync(id, stop.Token), CancellationToken.None), stop);
                    }
                }
                catch (StoreUnavailableException e)
                {
                    log.LogWarning("SSF push: the stream store is unavailable ({Message}); retrying", e.Message);
                }

                try
                {
                    await poked.WaitAsync(_ssf.StreamRefreshInterval, stoppingToken);
                }
                catch (TimeoutException)
                {
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            transmitter.StreamsChanged -= Poke;
            foreach (var worker in _workers.Values)
            {
                await worker.Stop.CancelAsync();
            }

            await Task.WhenAll(_workers.Values.Select(w => w.Task));
            Http.Dispose();
        }
    }

    private void Poke() => Interlocked.Exchange(ref _poke, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    private async Task PushAsync(string streamId, CancellationToken cancellationToken)
    {
        using var watching = notifier.Watch();
        var claimTtl = _ssf.StreamRefreshInterval * 3 + _ssf.PushTimeout;
        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var changed = notifier.NextChange;
            var wait = _ssf.StreamRefreshInterval;
            try
            {
                var stream = await transmitter.Streams.GetAsync(streamId, cancellationToken);
                if (stream is null || stream.DeliveryMethod != SsfNames.PushDelivery || stream.Status != SsfNames.Enabled)
                {
                    return;
                }

                if (!await transmitter.Streams.TryClaimPushAsync(streamId, _replica, claimTtl, cancellationToken))
                {
                    await Task.Delay(_ssf.StreamRefreshInterval, time, cancellationToken);
                    continue;
                }

                var batch = await SsfFeed.ReadAsync(transmitter.Log, stream, BatchSize, cancellationToken);
                if (batch.CursorTooOld)
                {
                    log.LogWarning("SSF push: stream {Stream} fell behind the revocation log's retention; some events were dropped before delivery", streamId);
                }

                var delivered = new List<string>();
                var failed = false;
                foreach (var pending in batch.Events)
                {
                    if (!await DeliverAsync(stream, pending, cancellationToken))
                    {
                        failed = true;
                        break;
                    }

                    delivered.Add(pending.Jti);
                }

                if (delivered.Count > 0)
                {
                    await transmitter.AcknowledgeAsync(stream, delivered, cancellationToken);
                }

                if (failed)
                {
                    failures++;
                    wait = Backoff(failures);
                    await Task.Delay(wait, time, cancellationToken);
                    continue;
                }

                failures = 0;
                if (batch.Events.Count > 0)
                {
                    continue;
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is StoreUnavailableException or SsfException)
            {
                log.LogWarning("SSF push: stream {Stream}: {Message}; retrying", streamId, e.Message);
                failures++;
                await Task.Delay(Backoff(failures), time, cancellationToken);
                continue;
            }

            try
            {
                await changed.WaitAsync(wait, cancellationToken);
            }
            catch (TimeoutException)
            {
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private TimeSpan Backoff(int failures)
    {
        var delay = _ssf.PushRetryInitial * Math.Pow(2, Math.Min(failures - 1, 20));
        var capped = delay > _ssf.PushRetryMax ? _ssf.PushRetryMax : delay;
        return capped * (0.8 + Random.Shared.NextDouble() * 0.4);
    }

    /// <summary>One RFC 8935 POST; true when the SET is acknowledged (or finally rejected), false to retry.</summary>
    private async Task<bool> DeliverAsync(SsfStream stream, SsfPending pending, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, stream.EndpointUrl)
        {
            Content = new StringContent(transmitter.Sign(stream, pending)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(SsfNames.SetMediaType);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (stream.AuthorizationHeader is { Length: > 0 } authorization)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        try
        {
            using var response = await Http.SendAsync(request, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                return true;
            }

            if ((int)response.StatusCode == 400)
            {
                var error = await ReadErrorAsync(response, cancellationToken);
                log.LogWarning("SSF push: stream {Stream}: the receiver rejected SET {Jti} ({Error}); not retried", stream.StreamId, pending.Jti, error);
                return true;
            }

            log.LogInformation("SSF push: stream {Stream}: the receiver answered {Status}; retrying with backoff", stream.StreamId, (int)response.StatusCode);
            return false;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            log.LogInformation("SSF push: stream {Stream}: {Message}; retrying with backoff", stream.StreamId, e.Message);
            return false;
        }
    }

    private static async Task<string> ReadErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            using var json = JsonDocument.Parse(body.Length > 4096 ? body[..4096] : body);
            return json.RootElement.TryGetProperty("err", out var err) ? err.ToString() : "no err member";
        }
        catch (JsonException)
        {
            return "no JSON error";
        }
    }
}
