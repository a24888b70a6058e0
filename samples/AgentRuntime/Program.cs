// A sample agent runtime: one task, start to finish, against the dev broker and samples/DownstreamApi.
//   dotnet run --project src/CredBroker.Server -- --dev      (prints the dev secret)
//   dotnet run --project samples/DownstreamApi               (the demo-api, on http://127.0.0.1:5500)
//   dotnet run --project samples/AgentRuntime
// Both samples read CREDBROKER_DEV_SECRET. Settings: CREDBROKER_ADDRESS (agent listener,
// default http://127.0.0.1:5401), DEMO_API_URL (default http://127.0.0.1:5500).
// The client comes from AddCredBrokerClient (a real app binds "CredBroker:Client" from its configuration).
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

var secret = Environment.GetEnvironmentVariable("CREDBROKER_DEV_SECRET");
if (string.IsNullOrEmpty(secret))
{
    Console.Error.WriteLine("Set CREDBROKER_DEV_SECRET to the agent secret the dev broker printed.");
    return 2;
}

var brokerAddress = new Uri(Environment.GetEnvironmentVariable("CREDBROKER_ADDRESS") is { Length: > 0 } a ? a : "http://127.0.0.1:5401");
using var api = new HttpClient { BaseAddress = new Uri(Environment.GetEnvironmentVariable("DEMO_API_URL") is { Length: > 0 } u ? u : "http://127.0.0.1:5500") };
await using var services = new ServiceCollection()
    .AddCredBrokerClient(o =>
    {
        o.Address = brokerAddress;
        o.Credential = secret; // in production: o.CredentialFile = the projected service-account token (re-read per call)
    })
    .BuildServiceProvider(validateScopes: true);
var broker = services.GetRequiredService<CredBrokerClient>();
using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
var ct = stop.Token;

try
{
    // 1. One lease for this task: the broker checks the agent's policy and returns a token for demo-api.
    var task = new BeginTaskRequest
    {
        TaskId = "runtime-" + Guid.NewGuid().ToString("N"),
        Purpose = "summarise open tickets",
        Scopes = { "demo:read" },
        Audience = "demo-api",
        Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(5)),
    };
    var begun = await broker.BeginTaskAsync(task, ct);
    Console.WriteLine($"BeginTask: lease {begun.LeaseId}, scopes [{string.Join(' ', begun.GrantedScopes)}], lease deadline {begun.LeaseDeadline.ToDateTimeOffset():u}");

    // 2. Call the downstream API with it (validated offline there: JWKS + live revocation feed).
    var first = await CallApiAsync(begun.AccessToken);
    Console.WriteLine($"GET /tickets with the token: {(int)first.Status} {first.Body}");

    // 3. A longer task keeps its lease alive and gets a fresh token (never past the agent's max lifetime).
    var renewed = await broker.RenewLeaseAsync(new RenewLeaseRequest { LeaseId = begun.LeaseId, ExtendBy = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)) }, ct);
    Console.WriteLine($"RenewLease: lease deadline {renewed.LeaseDeadline.ToDateTimeOffset():u}, token expires {renewed.TokenExpiresAt.ToDateTimeOffset():u}");
    var second = await CallApiAsync(renewed.AccessToken);
    Console.WriteLine($"GET /tickets with the renewed token: {(int)second.Status}");

    // 4. Done: completing the task ends the lease, and every token minted under it stops working.
    var done = await broker.CompleteTaskAsync(begun.LeaseId, ct);
    Console.WriteLine($"CompleteTask: {done.State}");

    // 5. The API learns of the completion over WatchRevocations within milliseconds; wait for it with a deadline.
    var clock = Stopwatch.StartNew();
    var after = await CallApiAsync(renewed.AccessToken);
    while (after.Status == HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(5))
    {
        await Task.Delay(20, ct);
        after = await CallApiAsync(renewed.AccessToken);
    }

    Console.WriteLine($"GET /tickets after completion: {(int)after.Status} {after.Challenge} (after {clock.ElapsedMilliseconds} ms)");
    var ok = first.Status == HttpStatusCode.OK && second.Status == HttpStatusCode.OK && done.State == "completed" && after.Status == HttpStatusCode.Unauthorized;
    Console.WriteLine(ok ? "The token worked during the task and is rejected after it." : "UNEXPECTED: see the statuses above.");
    return ok ? 0 : 1;
}
catch (RpcException e)
{
    // e.Detail is the broker's message; e.ErrorInfo (from grpc-status-details-bin) names the policy rules of a denial.
    var rules = e.ErrorInfo?.Metadata.TryGetValue("rules", out var r) == true ? $" (rules: {r})" : "";
    Console.Error.WriteLine($"The broker at {brokerAddress} refused: {e.StatusCode} {e.Detail}{rules}");
    return 1;
}
catch (HttpRequestException e)
{
    Console.Error.WriteLine($"The demo API at {api.BaseAddress} is not reachable ({e.Message}): start it with `dotnet run --project samples/DownstreamApi`.");
    return 1;
}

async Task<(HttpStatusCode Status, string Body, string Challenge)> CallApiAsync(string token)
{
    using var request = new HttpRequestMessage(HttpMethod.Get, "/tickets") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", token) } };
    using var response = await api.SendAsync(request, ct);
    return (response.StatusCode, await response.Content.ReadAsStringAsync(ct), response.Headers.WwwAuthenticate.ToString());
}
