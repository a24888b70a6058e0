using CredBroker.Core.Agents;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Leases.InMemory;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;
using CredBroker.Core.Tokens;
using CredBroker.Grpc;
using Grpc.Health.V1;
using CredBroker.Redis;
using CredBroker.Server.Auth;
using CredBroker.Server.Http;
using CredBroker.Server.Services;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Serilog;
using Serilog.Formatting.Json;

namespace CredBroker.Server.Hosting;

/// <summary>The composition root: options → store, keys, agents, authenticators → three listeners.</summary>
public static class BrokerApp
{
    public static WebApplication Create(string[] args, TextWriter? console = null)
    {
        console ??= Console.Out;
        var dev = args.Contains("--dev", StringComparer.Ordinal);
        var builder = WebApplication.CreateSlimBuilder(args.Where(a => a != "--dev").ToArray());
        var options = BrokerOptions.Bind(builder.Configuration, dev);

        var serilog = new LoggerConfiguration()
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft", Serilog.Events.LogEventLevel.Warning)
            .Enrich.FromLogContext();
        serilog = options.Dev ? serilog.WriteTo.Console() : serilog.WriteTo.Console(new JsonFormatter(renderMessage: true));
        builder.Logging.ClearProviders();
        builder.Logging.AddSerilog(serilog.CreateLogger(), dispose: true);

        var time = TimeProvider.System;
        var composition = options.Dev ? ComposeDev(options, console) : ComposeProduction(options, time);
        var keys = composition.Keys;
        var minter = new TokenMinter(keys, options.Issuer, time);
        var policy = composition.Policy;
        var broker = new TaskBroker(policy, policy, composition.Store, minter, new TokenReader(keys, options.Issuer, time), time);
        var approvals = new ApprovalDesk(policy, broker.Policy, composition.Store, minter, time);
        if (options.AgentsFile is { Length: > 0 } policyFile)
        {
            builder.Services.AddHostedService(services => new PolicyWatcherService(policy, policyFile, time, services.GetRequiredService<ILogger<PolicyWatcherService>>()));
        }
        Func<CancellationToken, Task<bool>> ready = ct => IsStoreReachableAsync(composition.Store, ct);

        var notifier = new RevocationNotifier(composition.Store, options.Leases.RevocationPollInterval);
        builder.Services.AddHostedService(_ => notifier);
        builder.Services.AddHostedService(services => new SweeperService(
            new LeaseSweeper(composition.Store, time), options.Leases.SweepInterval, services.GetRequiredService<ILogger<SweeperService>>()));

        var listen = options.Listen;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.Http2.MaxStreamsPerConnection = listen.Http2.MaxStreamsPerConnection;
            kestrel.Limits.Http2.KeepAlivePingDelay = listen.Http2.KeepAlivePingDelay ?? Timeout.InfiniteTimeSpan;
            kestrel.Limits.Http2.KeepAlivePingTimeout = listen.Http2.KeepAlivePingTimeout;
            kestrel.Listen(listen.ParsedAddress, listen.HttpPort, l => l.Protocols = HttpProtocols.Http1);
            foreach (var port in new[] { listen.AgentPort, listen.OperatorPort })
            {
                kestrel.Listen(listen.ParsedAddress, port, l => ConfigureGrpcListener(l, listen.Tls));
            }
        });

        var app = builder.Build();
        var policyLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CredBroker.Policy");
        broker.Policy.DenialBurst += burst => policyLog.LogWarning(
            "Denial burst: agent {Agent} was denied {Denials} times within {Window} (last rules {Rules}); action {Action}",
            burst.AgentId, burst.Denials, burst.Window, string.Join(",", burst.RuleIds), burst.Action);
        var grpcOptions = new GrpcServerOptions
        {
            MaxReceiveMessageSize = listen.Grpc.MaxReceiveMessageSize,
            MaxSendMessageSize = listen.Grpc.MaxSendMessageSize,
            MaxUnaryDeadline = listen.Grpc.MaxUnaryDeadline,
            CompressResponses = listen.Grpc.CompressResponses,
        };
        var callLog = CallLogging.Interceptor(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CredBroker.Calls"));
        var openServices = new HashSet<string>(StringComparer.Ordinal) { HealthService.ServiceName, ServerReflection.V1Service, ServerReflection.V1AlphaService };

        var agentMethods = new GrpcMethodRegistry()
            .Use(callLog)
            .Use(CallGuard.Authenticate(composition.AgentAuthenticator, openServices));
        new AgentBrokerService(broker, approvals, notifier).Register(agentMethods);
        new TokenValidationService(broker, keys, composition.Store, notifier).Register(agentMethods);
        new HealthService(ready, [AgentBrokerService.ServiceName, TokenValidationService.ServiceName]).Register(agentMethods);
        agentMethods.AddServerReflection(
            Contracts.V1.AgentBrokerReflection.Descriptor, Contracts.V1.TokenValidationReflection.Descriptor, HealthReflection.Descriptor);

        var operatorMethods = new GrpcMethodRegistry()
            .Use(callLog)
            .Use(CallGuard.Authenticate(composition.OperatorAuthenticator, openServices));
        new OperatorService(new LeaseAdministration(composition.Store, time), notifier).Register(operatorMethods);
        new PolicyOperatorService(policy, broker.Policy, approvals, time).Register(operatorMethods);
        new HealthService(ready, [OperatorService.ServiceName]).Register(operatorMethods);
        operatorMethods.AddServerReflection(Contracts.V1.OperatorReflection.Descriptor, HealthReflection.Descriptor);

        app.MapWhen(http => http.Connection.LocalPort == listen.AgentPort, branch => branch.UseGrpcMethods(agentMethods, grpcOptions));
        app.MapWhen(http => http.Connection.LocalPort == listen.OperatorPort, branch => branch.UseGrpcMethods(operatorMethods, grpcOptions));
        WellKnownEndpoints.Map(app, keys, options.Issuer, ready);
        app.Lifetime.ApplicationStopped.Register(() => (composition.Store as IDisposable)?.Dispose());
        return app;
    }

    private sealed record Composition(
        ILeaseStore Store, StaticSigningKeys Keys, PolicyHolder Policy, ICallerAuthenticator AgentAuthenticator, ICallerAuthenticator OperatorAuthenticator);

    /// <summary>h2c (cleartext HTTP/2 needs Http2 alone; Http1AndHttp2 on h2c silently speaks HTTP/1.1) or TLS with ALPN h2.</summary>
    private static void ConfigureGrpcListener(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen, BrokerOptions.TlsOptions? tls)
    {
        listen.Protocols = HttpProtocols.Http2;
        if (tls is not null)
        {
            listen.UseGrpcTls(new GrpcTlsOptions
            {
                CertificateFile = tls.CertificateFile,
                KeyFile = tls.KeyFile,
                ClientCaFile = tls.ClientCaFile,
                RequireClientCertificate = tls.RequireClientCertificate,
            });
        }
    }

    private static Composition ComposeDev(BrokerOptions options, TextWriter console)
    {
        var agentSecret = DevMode.Secret("CREDBROKER_DEV_SECRET");
        var operatorSecret = DevMode.Secret("CREDBROKER_DEV_OPERATOR_SECRET");
        if (agentSecret == operatorSecret)
        {
            throw new InvalidOperationException("CREDBROKER_DEV_SECRET and CREDBROKER_DEV_OPERATOR_SECRET must differ: agent and operator credentials are never interchangeable.");
        }

        var agents = options.AgentsFile is { Length: > 0 } file
            ? PolicyHolder.FromFile(file, TimeProvider.System)
            : new PolicyHolder(() => PolicyFile.Parse(DevMode.SamplePolicy, "dev sample policy"), TimeProvider.System);
        console.WriteLine(DevMode.Banner(options, agentSecret, operatorSecret));
        return new Composition(new InMemoryLeaseStore(options.Leases.StoreOptions()), new StaticSigningKeys([SigningKey.Generate()]), agents,
            new DevSecretAuthenticator(agentSecret, DevMode.AgentId, DevMode.AgentId),
            new DevSecretAuthenticator(operatorSecret, DevMode.OperatorId, agentId: null));
    }

    private static Composition ComposeProduction(BrokerOptions options, TimeProvider time)
    {
        var problems = options.ProductionProblems();
        if (problems.Count > 0)
        {
            throw new StartupException("CredBroker refuses to start:" + string.Concat(problems.Select(p => Environment.NewLine + "  - " + p))
                + Environment.NewLine + "  (for a local trial run with --dev)");
        }

        var keys = new StaticSigningKeys(options.Signing.KeyFiles.Select(SigningKey.FromPemFile).ToList());
        var agents = PolicyHolder.FromFile(options.AgentsFile!, time);
        var store = RedisLeaseStore.Connect(options.Redis.Configuration!, options.Leases.StoreOptions());
        ICallerAuthenticator operators = options.Operators.Issuers.Count > 0 && options.Operators.Subjects.Count > 0
            ? WorkloadJwtAuthenticator.ForOperators(options.Operators.Issuers, options.Operators.Subjects, time)
            : new RejectAllAuthenticator("operator");
        return new Composition(store, keys, agents, new WorkloadJwtAuthenticator(options.Identity.Issuers, time), operators);
    }

    /// <summary>A real round trip to the store (an unknown, well-formed id), so a dead Redis shows as not ready.</summary>
    private static async Task<bool> IsStoreReachableAsync(ILeaseStore store, CancellationToken cancellationToken)
    {
        try
        {
            await store.GetAsync(LeaseIds.For("readiness-probe", "readiness-probe"), cancellationToken);
            return true;
        }
        catch (StoreUnavailableException)
        {
            return false;
        }
    }
}

/// <summary>Configuration that cannot run; its message says what to set.</summary>
public sealed class StartupException(string message) : Exception(message);
