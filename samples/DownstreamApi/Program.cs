// The sample "demo-api": every request needs a CredBroker token for audience demo-api, validated
// offline (JWKS from the broker's HTTP listener), with revocations followed live from the broker.
//   dotnet run --project samples/DownstreamApi          (dev broker running; CREDBROKER_DEV_SECRET set)
//   curl -H "Authorization: Bearer <access_token>" http://127.0.0.1:5500/tickets
using CredBroker.Client;
using CredBroker.Validation;
using CredBroker.Validation.AspNetCore;

var builder = WebApplication.CreateSlimBuilder(args);
var broker = builder.Configuration["Broker:Http"] ?? "http://127.0.0.1:5400";
var agentListener = builder.Configuration["Broker:Grpc"] ?? "http://127.0.0.1:5401";
var secret = Environment.GetEnvironmentVariable("CREDBROKER_DEV_SECRET")
    ?? throw new InvalidOperationException("Set CREDBROKER_DEV_SECRET (printed by the dev broker): the API authenticates to the revocation feed with it.");
builder.WebHost.UseUrls(builder.Configuration["Urls"] ?? "http://127.0.0.1:5500");

var http = new HttpClient { BaseAddress = new Uri(broker) };
var keys = new JwksCache(ct => http.GetStringAsync("/.well-known/jwks.json", ct));
var sync = new RevocationSync(new BrokerRevocationFeed(new CredBrokerClient(new Uri(agentListener), () => secret)), new DenyList(), TimeProvider.System);
var validator = new AccessTokenValidator(new TokenValidationOptions { Issuer = broker.TrimEnd('/'), Audience = "demo-api" }, keys, sync);

builder.Services.AddSingleton(validator);
builder.Services.AddAuthentication().AddCredBroker();
builder.Services.AddAuthorization();
var app = builder.Build();
app.UseAuthentication();
app.UseAuthorization();

app.MapGet("/tickets", (HttpContext c) => new { tickets = new[] { "T-1", "T-2" }, reader = c.User.FindFirst("sub")?.Value })
    .RequireAuthorization(p => p.RequireScope("demo:read"));
app.MapPost("/tickets", (HttpContext c) => Results.Created("/tickets/T-3", new { id = "T-3", by = c.User.FindFirst("sub")?.Value }))
    .RequireAuthorization(p => p.RequireScope("demo:write"));
app.MapGet("/healthz", () => sync.IsHealthy ? Results.Ok("ok") : Results.Problem("revocation feed down", statusCode: 503));

// Started together with the broker (or before it), wait for its JWKS instead of failing closed until the next refresh.
using (var waiting = new CancellationTokenSource(TimeSpan.FromSeconds(120)))
{
    while (!await keys.RefreshAsync(waiting.Token))
    {
        Console.WriteLine($"waiting for the broker's JWKS at {broker}/.well-known/jwks.json ...");
        await Task.Delay(TimeSpan.FromSeconds(1), waiting.Token);
    }
}

_ = keys.RunAsync(TimeSpan.FromMinutes(5), app.Lifetime.ApplicationStopping);
_ = sync.RunAsync(app.Lifetime.ApplicationStopping);
await app.RunAsync();
