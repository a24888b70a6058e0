// The sample "demo-api": every request needs a CredBroker token for audience demo-api, validated
// offline (JWKS from the broker's HTTP listener), with revocations followed live from the broker.
//   dotnet run --project samples/DownstreamApi          (dev broker running; CREDBROKER_DEV_SECRET set)
//   curl -H "Authorization: Bearer <access_token>" http://127.0.0.1:5500/tickets
using CredBroker.Client;
using CredBroker.Validation.AspNetCore;

var builder = WebApplication.CreateSlimBuilder(args);
var broker = builder.Configuration["Broker:Http"] ?? "http://127.0.0.1:5400";
var agentListener = builder.Configuration["Broker:Grpc"] ?? "http://127.0.0.1:5401";
var secret = Environment.GetEnvironmentVariable("CREDBROKER_DEV_SECRET")
    ?? throw new InvalidOperationException("Set CREDBROKER_DEV_SECRET (printed by the dev broker): the API authenticates to the revocation feed with it.");
builder.WebHost.UseUrls(builder.Configuration["Urls"] ?? "http://127.0.0.1:5500");

// Keys from {issuer}/.well-known/jwks.json, refreshed in the background; revocations over WatchRevocations.
builder.Services.AddAuthentication().AddCredBroker(o =>
{
    o.Issuer = broker.TrimEnd('/');
    o.Audience = "demo-api";
    o.RevocationFeed = new BrokerRevocationFeed(new CredBrokerClient(new Uri(agentListener), () => secret));
});
builder.Services.AddAuthorization();
var app = builder.Build();
app.UseAuthentication();
app.UseAuthorization();

app.MapGet("/tickets", (HttpContext c) => new { tickets = new[] { "T-1", "T-2" }, reader = c.User.FindFirst("sub")?.Value })
    .RequireAuthorization(p => p.RequireScope("demo:read"));
app.MapPost("/tickets", (HttpContext c) => Results.Created("/tickets/T-3", new { id = "T-3", by = c.User.FindFirst("sub")?.Value }))
    .RequireAuthorization(p => p.RequireScope("demo:write"));
// 503 until the broker's keys are loaded and the revocation feed has caught up, and while it is down.
app.MapHealthChecks("/healthz");

await app.RunAsync();
