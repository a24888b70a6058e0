using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using CredBroker.Testing;
using CredBroker.Validation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CredBroker.Bench;

/// <summary>
/// Revocation propagation by the three routes side by side, on one production broker (in process,
/// redis-server with `appendfsync always`): a CredBroker.Validation validator following
/// WatchRevocations, an SSF push receiver (RFC 8935, a Kestrel endpoint), and an SSF poll receiver
/// (RFC 8936, long poll with acks). For each revocation, the time from RevokeLease returning to each
/// subscriber knowing the lease is revoked (the validator refusing the token; each SSF receiver
/// holding a verified SET for the lease).
/// </summary>
internal static class SsfPropagationBenchmarks
{
    private const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

    public static async Task<string> RunAsync(int count, TextWriter log)
    {
        using var redis = RedisServer.Start(appendOnly: true);
        var dir = Directory.CreateTempSubdirectory("credbroker-ssf-bench-").FullName;
        var secret = "bench-" + Guid.NewGuid().ToString("N");
        await File.WriteAllTextAsync(Path.Combine(dir, "receiver.secret"), secret);
        await using var broker = new ProductionBroker(ProductionBroker.AgentsYaml.Replace("max_lease_lifetime: 30m", "max_lease_lifetime: 30m\n    max_tasks_per_minute: 1000000", StringComparison.Ordinal));
        await broker.StartAsync(redis.ConnectionString,
            "--CredBroker:Ssf:Receivers:0:Id=tickets-api", $"--CredBroker:Ssf:Receivers:0:SecretFile={Path.Combine(dir, "receiver.secret")}",
            "--CredBroker:Ssf:AllowHttpPushEndpoints=true");
        using var agent = broker.ClientFor("system:serviceaccount:support:triage");
        using var operators = broker.OperatorClient();
        using var downstream = broker.ClientFor("system:serviceaccount:apis:tickets");
        using var http = new HttpClient { BaseAddress = broker.HttpAddress, Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        var issuer = broker.HttpAddress.ToString().TrimEnd('/');

        // Route 1: WatchRevocations into an offline validator.
        var keys = new JwksCache(ct => http.GetStringAsync("/.well-known/jwks.json", ct));
        await keys.RefreshAsync();
        var sync = new RevocationSync(new BrokerRevocationFeed(downstream), new DenyList(), TimeProvider.System);
        using var stop = new CancellationTokenSource();
        var following = sync.RunAsync(stop.Token);
        var validator = new AccessTokenValidator(new TokenValidationOptions { Issuer = issuer, Audience = "tickets-api" }, keys, sync);

        // SETs are verified as a receiver would (signature, typ, iss, aud) before they count.
        var jwks = new JsonWebKeySet(await http.GetStringAsync("/.well-known/jwks.json"));
        var parameters = new TokenValidationParameters
        {
            ValidIssuer = issuer, ValidAudience = "tickets-api", IssuerSigningKeys = jwks.GetSigningKeys(), ValidAlgorithms = ["ES256"],
            ValidTypes = ["secevent+jwt"], RequireExpirationTime = false,
        };
        var handler = new JsonWebTokenHandler();
        async Task<string?> LeaseOf(string set)
        {
            var result = await handler.ValidateTokenAsync(set, parameters);
            return result.IsValid
                ? (string?)JsonNode.Parse(((JsonWebToken)result.SecurityToken).GetPayloadValue<object>("events").ToString()!)![SessionRevoked]?["lease_id"]
                : throw new InvalidOperationException("a SET did not verify: " + result.Exception?.Message);
        }

        // Route 2: SSF push to a Kestrel receiver.
        var pushed = new ConcurrentDictionary<string, long>();
        var receiverPort = RedisServer.FreePort();
        var receiverBuilder = WebApplication.CreateSlimBuilder();
        receiverBuilder.Logging.ClearProviders();
        var receiver = receiverBuilder.Build();
        receiver.Urls.Add($"http://127.0.0.1:{receiverPort}");
        receiver.MapPost("/events", async (HttpContext context) =>
        {
            var set = await new StreamReader(context.Request.Body).ReadToEndAsync();
            if (await LeaseOf(set) is { } lease)
            {
                pushed.TryAdd(lease, Stopwatch.GetTimestamp());
            }

            context.Response.StatusCode = 202;
        });
        await receiver.StartAsync();
        await Create(http, new JsonObject { ["method"] = "urn:ietf:rfc:8935", ["endpoint_url"] = $"http://127.0.0.1:{receiverPort}/events" });

        // Route 3: SSF poll (long poll, acknowledging what it got on the next request).
        var polled = new ConcurrentDictionary<string, long>();
        var pollUrl = (string)(await Create(http, new JsonObject { ["method"] = "urn:ietf:rfc:8936" }))["delivery"]!["endpoint_url"]!;
        var polling = Task.Run(async () =>
        {
            var acks = new JsonArray();
            while (!stop.IsCancellationRequested)
            {
                var body = new JsonObject { ["ack"] = acks, ["maxEvents"] = 100, ["returnImmediately"] = false };
                using var response = await http.PostAsync(pollUrl, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"), stop.Token);
                var sets = JsonNode.Parse(await response.Content.ReadAsStringAsync(stop.Token))!["sets"]!.AsObject();
                acks = [];
                foreach (var (jti, set) in sets)
                {
                    if (await LeaseOf((string)set!) is { } lease)
                    {
                        polled.TryAdd(lease, Stopwatch.GetTimestamp());
                    }

                    acks.Add(jti);
                }
            }
        });

        var started = Stopwatch.StartNew();
        while (!sync.IsSynced)
        {
            if (started.Elapsed > TimeSpan.FromSeconds(20))
            {
                throw new InvalidOperationException("the revocation feed did not catch up in 20 s");
            }

            await Task.Delay(10);
        }

        var watch = new List<double>(count);
        var push = new List<double>(count);
        var poll = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var begun = await agent.BeginTaskAsync(new BeginTaskRequest { TaskId = $"ssf-bench-{i}-{Guid.NewGuid():N}", Scopes = { "tickets:read" } });
            await operators.RevokeLeaseAsync(begun.LeaseId, "benchmark");
            var revoked = Stopwatch.GetTimestamp();
            long? refused = null;
            while (refused is null || !pushed.ContainsKey(begun.LeaseId) || !polled.ContainsKey(begun.LeaseId))
            {
                if (refused is null && validator.Validate(begun.AccessToken, DateTimeOffset.UtcNow).Error == TokenErrors.Revoked)
                {
                    refused = Stopwatch.GetTimestamp();
                }

                if (Stopwatch.GetElapsedTime(revoked) > TimeSpan.FromSeconds(10))
                {
                    throw new InvalidOperationException($"revocation {i} did not reach every subscriber in 10 s (watch {refused is not null}, push {pushed.ContainsKey(begun.LeaseId)}, poll {polled.ContainsKey(begun.LeaseId)})");
                }

                await Task.Yield();
            }

            watch.Add(Stopwatch.GetElapsedTime(revoked, refused.Value).TotalMilliseconds);
            push.Add(Stopwatch.GetElapsedTime(revoked, pushed[begun.LeaseId]).TotalMilliseconds);
            poll.Add(Stopwatch.GetElapsedTime(revoked, polled[begun.LeaseId]).TotalMilliseconds);
        }

        await stop.CancelAsync();
        await following;
        try
        {
            await polling;
        }
        catch (OperationCanceledException)
        {
        }

        await receiver.StopAsync();
        await receiver.DisposeAsync();
        Directory.Delete(dir, recursive: true);

        var rows = new[] { ("WatchRevocations → CredBroker.Validation", watch), ("SSF push (RFC 8935) → HTTP receiver", push), ("SSF poll (RFC 8936, long poll) → receiver", poll) };
        var table = new StringBuilder().AppendLine("| route | revocations | p50 | p99 | max |").AppendLine("|---|---:|---:|---:|---:|");
        foreach (var (name, latencies) in rows)
        {
            latencies.Sort();
            table.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {latencies.Count:N0} | {P(latencies, 0.5):0.0} ms | **{P(latencies, 0.99):0.0} ms** | {latencies[^1]:0.0} ms |");
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: p50 {P(latencies, 0.5):0.0} ms, p99 {P(latencies, 0.99):0.0} ms, max {latencies[^1]:0.0} ms"));
        }

        return new StringBuilder()
            .AppendLine("## Revocation propagation: WatchRevocations, SSF push, SSF poll").AppendLine()
            .AppendLine($"`dotnet run -c Release --project bench/CredBroker.Bench -- ssf-propagation --count {count} --write docs/benchmarks.md`").AppendLine()
            .AppendLine($"Run {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Environment.ProcessorCount} cores (load average before: {File.ReadAllText("/proc/loadavg").Split(' ')[0]}): "
                + "one production broker in process, redis-server with `appendfsync always`, all three subscribers at once on the same replica. "
                + "Measured from `RevokeLease` returning to the subscriber knowing: the validator refusing the token with `revoked`; each SSF receiver "
                + "holding the lease's SET, its signature, `typ`, `iss` and `aud` verified. One revocation at a time.").AppendLine()
            .Append(table).AppendLine()
            .AppendLine("All three read the same revocation log and are woken by the same notifier (this replica's revocations at once, other "
                + "replicas' by the 50 ms log poll). Push adds one HTTP POST per SET and the cursor write after the 202; poll adds the long-poll "
                + "response and the receiver's next request (the acknowledgement rides on it). The tails (p99, max) follow the machine's load "
                + "(the load average above, on a machine shared by several sessions); the medians compare the routes.").AppendLine()
            .ToString();

        static double P(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];
    }

    private static async Task<JsonNode> Create(HttpClient http, JsonObject delivery)
    {
        var body = new JsonObject { ["delivery"] = delivery, ["events_requested"] = new JsonArray(SessionRevoked) };
        using var response = await http.PostAsync("/ssf/streams", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode ? JsonNode.Parse(text)! : throw new InvalidOperationException($"creating an SSF stream failed: {text}");
    }
}
