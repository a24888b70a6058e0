// The sample MCP tool server: streamable HTTP on http://127.0.0.1:5600/mcp, audience demo-api. Every request needs a
// CredBroker token (validated offline: JWKS, live revocation feed, certificate binding when the token is bound);
// each tool needs its own scope; tools/list shows a caller only the tools its token allows.
//   dotnet run --project samples/McpServer              (dev broker running; CREDBROKER_DEV_SECRET set)
//   curl -i -X POST http://127.0.0.1:5600/mcp            -> 401, WWW-Authenticate: Bearer resource_metadata="..."
//   curl http://127.0.0.1:5600/.well-known/oauth-protected-resource
using CredBroker.Client;
using CredBroker.Validation.AspNetCore;
using CredBroker.Validation.Mcp;
using McpServerSample;

var builder = WebApplication.CreateBuilder(args);
var broker = (builder.Configuration["Broker:Http"] ?? "http://127.0.0.1:5400").TrimEnd('/');
var agentListener = builder.Configuration["Broker:Grpc"] ?? "http://127.0.0.1:5401";
var urls = builder.Configuration["Urls"] ?? "http://127.0.0.1:5600";
var secret = Environment.GetEnvironmentVariable("CREDBROKER_DEV_SECRET")
    ?? throw new InvalidOperationException("Set CREDBROKER_DEV_SECRET (printed by the dev broker): the server authenticates to the revocation feed with it.");
builder.WebHost.UseUrls(urls);

// Tokens: CredBroker's handler (keys from {issuer}/.well-known/jwks.json, revocations over WatchRevocations, so a
// completed task's token is refused at once); challenges and metadata per the MCP authorization spec.
builder.Services.AddAuthentication(CredBrokerMcpDefaults.AuthenticationScheme)
    .AddCredBroker(o =>
    {
        o.Issuer = broker;
        o.Audience = "demo-api";
        o.RevocationFeed = new BrokerRevocationFeed(new CredBrokerClient(new Uri(agentListener), () => secret));
    })
    .AddCredBrokerMcp(o =>
    {
        o.Resource = new Uri(urls.TrimEnd('/') + "/mcp");
        o.AuthorizationServers.Add(new Uri(broker));
        o.ResourceName = "CredBroker sample ticket tools";
    });
builder.Services.AddAuthorization();
builder.Services.AddSingleton<TicketDesk>();
builder.Services.AddMcpServer(o => o.ServerInfo = new() { Name = "credbroker-sample-tickets", Version = "1.0.0" })
    .WithHttpTransport()
    .WithTools<TicketTools>()
    .WithTools<CustomerTools>()
    .AddCredBrokerScopes();

var app = builder.Build();
app.UseAuthentication();
app.UseAuthorization();
app.MapCredBrokerProtectedResourceMetadata();
app.MapMcp("/mcp").RequireCredBrokerToken();
// 503 until the broker's keys are loaded and the revocation feed has caught up, and while it is down.
app.MapHealthChecks("/healthz");
await app.RunAsync();
