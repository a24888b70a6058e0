using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Audit.InMemory;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Leases.InMemory;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;
using CredBroker.Core.Tokens;
using CredBroker.Redis;
using CredBroker.Server.Audit;
using CredBroker.Server.Auth;
using CredBroker.Server.Http;
using CredBroker.Contracts.V1;
using CredBroker.Server.Metrics;
using CredBroker.Server.Rpc;
using CredBroker.Server.Services;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;

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

        Telemetry.AddBrokerLogging(builder, options.Dev);

        var time = TimeProvider.System;
        var composition = options.Dev ? ComposeDev(options, console, time) : ComposeProduction(options, time);
        var keys = composition.Keys;
        var metrics = new BrokerMetrics();
        var store = new TimedLeaseStore(composition.Store, metrics);
        Telemetry.AddBrokerTelemetry(builder.Services, options.Telemetry);
        var follow = new AuditFollow();
        IReadOnlyList<IAuditSink> sinks = options.Audit.JsonLinesFile is { Length: > 0 } jsonLines ? [new JsonLinesAuditSink(jsonLines)] : [];
        var audit = new AuditService(composition.AuditLog, sinks, [metrics, follow]);
        var refusals = new RefusalAggregator(audit, time, options.Audit.RefusalWindow, metrics);
        builder.Services.AddHostedService(services => new RefusalFlushService(refusals, services.GetRequiredService<ILogger<RefusalFlushService>>()));
        var minter = new TokenMinter(keys, options.Issuer, time);
        var policy = composition.Policy;
        var broker = new TaskBroker(policy, policy, store, minter, new TokenReader(keys, options.Issuer, time), time, refusals,
            UserTokens(options, time), options.Delegation.CoreOptions());
        var approvals = new ApprovalDesk(policy, broker.Policy, store, minter, time, audit);
        if (options.AgentsFile is { Length: > 0 } policyFile)
        {
            builder.Services.AddHostedService(services => new PolicyWatcherService(policy, policyFile, time, audit, services.GetRequiredService<ILogger<PolicyWatcherService>>()));
        }

        var rotation = new KeyRotation(keys, composition.KeySchedule, options.Signing.RotationOptions(),
            () => policy.Current.Agents.All.Max(a => a.MaxTokenTtl), time);
        var readiness = new CachedReadiness(new Readiness(store, composition.AuditLog, keys, () => policy.Current.Agents), time);
        Func<CancellationToken, Task<bool>> ready = readiness.RefreshAsync;
        builder.Services.AddHostedService(_ => new ActiveLeaseCounter(store, metrics, TimeSpan.FromSeconds(5)));

        builder.Services.AddHostedService(services => new KeyScheduleService(
            rotation, options.Signing.ScheduleRefreshInterval, time, services.GetRequiredService<ILogger<KeyScheduleService>>()));

        var notifier = new RevocationNotifier(store, options.Leases.RevocationPollInterval);
        builder.Services.AddHostedService(_ => notifier);
        builder.Services.AddHostedService(services => new SweeperService(
            new LeaseSweeper(store, time, audit: audit), options.Leases.SweepInterval, services.GetRequiredService<ILogger<SweeperService>>(), metrics));

        var listen = options.Listen;
        ConfigureKestrel(builder, listen);
        var listeners = new GrpcListeners(
        [
            new GrpcListener("agent", listen.AgentPort, composition.AgentAuthenticator, operators: false, [AgentBroker.Descriptor, TokenValidation.Descriptor]),
            new GrpcListener("operator", listen.OperatorPort, new AuditedAuthenticator(composition.OperatorAuthenticator, refusals, time), operators: true, [Operator.Descriptor]),
        ]);
        AddGrpc(builder.Services, listen.Grpc, listeners, metrics);
        builder.Services.AddHostedService(services => new ListenerHealthRefresher(
            listeners, ready, TimeSpan.FromSeconds(1), services.GetRequiredService<ILogger<ListenerHealthRefresher>>()));

        // The services Grpc.AspNetCore activates: singletons built from the composition above.
        builder.Services.AddSingleton(new AgentBrokerService(broker, approvals, notifier));
        builder.Services.AddSingleton(new TokenValidationService(broker, keys, store, notifier, metrics));
        builder.Services.AddSingleton(services => new OperatorService(
            new LeaseAdministration(store, time, audit, policy), notifier,
            new KeyOperations(rotation, keys, time, audit, services.GetRequiredService<ILogger<KeyOperations>>()),
            new AuditOperations(composition.AuditLog, composition.AuditSigners, follow, options.Audit.FollowPollInterval),
            new PolicyOperations(policy, broker.Policy, approvals, audit, time)));

        var app = builder.Build();
        var policyLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("CredBroker.Policy");
        broker.Policy.DenialBurst += burst => policyLog.LogWarning(
            "Denial burst: agent {Agent} was denied {Denials} times within {Window} (last rules {Rules}); action {Action}",
            burst.AgentId, burst.Denials, burst.Window, string.Join(",", burst.RuleIds), burst.Action);

        var deadlines = new GrpcDeadlines(listen.Grpc.MaxUnaryDeadline, listen.Grpc.MaxStreamingDeadline);
        Telemetry.UseBrokerRequestLogging(app);
        app.UseRouting();
        app.UseGrpcRequestChecks(deadlines);
        app.MapGrpcService<AgentBrokerService>();
        app.MapGrpcService<TokenValidationService>();
        app.MapGrpcService<OperatorService>();
        app.MapGrpcService<ListenerHealthService>();
        app.MapGrpcService<ListenerReflectionV1Service>();
        app.MapGrpcService<ListenerReflectionV1AlphaService>();
        WellKnownEndpoints.Map(app, keys, options.Issuer, readiness, options.Signing.PublishLead);
        Telemetry.MapMetrics(app);
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            (composition.Store as IDisposable)?.Dispose();
            (composition.AuditLog as IDisposable)?.Dispose();
            metrics.Dispose();
            foreach (var sink in sinks)
            {
                (sink as IDisposable)?.Dispose();
            }
        });
        return app;
    }

    /// <summary>
    /// Grpc.AspNetCore with the limits set explicitly, gzip that stops at the receive limit, the one
    /// broker interceptor, and per-listener service sets, health and reflection.
    /// </summary>
    private static void AddGrpc(IServiceCollection services, BrokerOptions.GrpcOptions grpc, GrpcListeners listeners, BrokerMetrics metrics)
    {
        services.AddSingleton(listeners);
        services.AddSingleton(metrics);
        services.AddSingleton(new StreamLimiter(grpc.MaxStreamsPerIdentity));
        services.AddGrpcLayer(grpc.MaxReceiveMessageSize, grpc.MaxSendMessageSize, grpc.CompressResponses);
        services.Configure<GrpcServiceOptions>(o => o.Interceptors.Add<BrokerCallInterceptor>());
        services.AddSingleton<ListenerHealthService>();
        services.AddSingleton<ListenerReflectionV1Service>();
        services.AddSingleton<ListenerReflectionV1AlphaService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ListenerEndpointPolicy>());
    }

    private static void ConfigureKestrel(WebApplicationBuilder builder, BrokerOptions.ListenOptions listen) =>
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.Http2.MaxStreamsPerConnection = listen.Http2.MaxStreamsPerConnection;
            kestrel.Limits.Http2.KeepAlivePingDelay = listen.Http2.KeepAlivePingDelay ?? Timeout.InfiniteTimeSpan;
            kestrel.Limits.Http2.KeepAlivePingTimeout = listen.Http2.KeepAlivePingTimeout;
            kestrel.Listen(listen.ParsedAddress, listen.HttpPort, l => l.Protocols = HttpProtocols.Http1);
            foreach (var port in new[] { listen.AgentPort, listen.OperatorPort })
            {
                var connections = new ConnectionLimiter(listen.Grpc.MaxConnectionsPerAddress);
                kestrel.Listen(listen.ParsedAddress, port, l =>
                {
                    l.Use(next => connection => connections.OnConnectionAsync(connection, next));
                    ConfigureGrpcListener(l, listen.Tls);
                });
            }
        });

    private sealed record Composition(
        ILeaseStore Store, RotatingSigningKeys Keys, IKeyScheduleStore KeySchedule, PolicyHolder Policy, ICallerAuthenticator AgentAuthenticator, ICallerAuthenticator OperatorAuthenticator,
        IAuditLog AuditLog, Func<IReadOnlyCollection<IAuditSigner>> AuditSigners);

    /// <summary>h2c (cleartext HTTP/2 needs Http2 alone; Http1AndHttp2 on h2c silently speaks HTTP/1.1) or TLS with ALPN h2.</summary>
    private static void ConfigureGrpcListener(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen, BrokerOptions.TlsOptions? tls)
    {
        listen.Protocols = HttpProtocols.Http2;
        if (tls is not null)
        {
            listen.UseListenerTls(new ListenerTlsOptions
            {
                CertificateFile = tls.CertificateFile,
                KeyFile = tls.KeyFile,
                ClientCaFile = tls.ClientCaFile,
                RequireClientCertificate = tls.RequireClientCertificate,
            });
        }
    }

    private static Composition ComposeDev(BrokerOptions options, TextWriter console, TimeProvider time)
    {
        DevMode.CheckListenAddress(options, console);
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
        // Dev keys are generated at start (and on RotateSigningKey); the schedule lives in memory.
        var keys = new RotatingSigningKeys(new KeyRing([], null, allowGenerate: true), time);
        var (signer, signers) = AuditSigners(options, keys);
        return new Composition(new InMemoryLeaseStore(options.Leases.StoreOptions()), keys, new InMemoryKeyScheduleStore(), agents,
            new DevSecretAuthenticator(agentSecret, DevMode.AgentId, DevMode.AgentId),
            new DevSecretAuthenticator(operatorSecret, DevMode.OperatorId, agentId: null, new HashSet<Auth.OperatorRole> { Auth.OperatorRole.Admin }),
            new InMemoryAuditLog(signer, options.Audit.LogOptions(), time), signers);
    }

    private static Composition ComposeProduction(BrokerOptions options, TimeProvider time)
    {
        var problems = options.ProductionProblems();
        if (problems.Count > 0)
        {
            throw new StartupException("CredBroker refuses to start:" + string.Concat(problems.Select(p => Environment.NewLine + "  - " + p))
                + Environment.NewLine + "  (for a local trial run with --dev)");
        }

        var keys = new RotatingSigningKeys(new KeyRing(options.Signing.KeyFiles, options.Signing.KeyDirectory), time);
        var agents = PolicyHolder.FromFile(options.AgentsFile!, time);
        var (store, connection) = ConnectRedis(options.Redis, options.Leases.StoreOptions());
        var (signer, signers) = AuditSigners(options, keys);
        var auditLog = RedisAuditLog.Connect(options.Audit.RedisConfiguration ?? options.Redis.Configuration!, signer, options.Audit.LogOptions(), time, connection: connection);
        var directory = new OperatorDirectory(options.Operators);
        var operatorJwt = options.Operators.Issuers.Count > 0 ? new WorkloadJwtAuthenticator(options.Operators.Issuers, time, options.Identity.VerifiedCredentialCacheSize) : null;
        var agentJwt = options.Identity.Issuers.Count > 0 ? new WorkloadJwtAuthenticator(options.Identity.Issuers, time, options.Identity.VerifiedCredentialCacheSize) : null;
        var certificates = options.Identity.Certificates.Select(c => new SubjectPattern(c.Subject, c.Agent)).ToList();
        return new Composition(store, keys, store.KeySchedule(), agents,
            new AgentAuthenticator(agentJwt, certificates, directory, identity => agents.Current.Agents.FindByIdentity(identity)?.Id), new OperatorAuthenticator(operatorJwt, directory), auditLog, signers);
    }

    /// <summary>Delegation on behalf of users is on only with trusted user-token issuers; settings that cannot work stop the start (dev mode too).</summary>
    private static Core.Delegation.ISubjectTokenValidator UserTokens(BrokerOptions options, TimeProvider time)
    {
        var problems = options.DelegationProblems().ToList();
        if (problems.Count > 0)
        {
            throw new StartupException("CredBroker refuses to start:" + string.Concat(problems.Select(p => Environment.NewLine + "  - " + p)));
        }

        return options.Delegation.Issuers.Count == 0
            ? Core.Delegation.NoUserTokenIssuers.Instance
            : new UserTokenValidator(options.Delegation.Issuers, time);
    }

    private static (RedisLeaseStore Store, RedisConnectionOptions Connection) ConnectRedis(BrokerOptions.RedisOptions redis, LeaseStoreOptions storeOptions)
    {
        try
        {
            var password = redis.PasswordFile is { Length: > 0 } file ? File.ReadAllText(file).TrimEnd('\r', '\n') : null;
            X509Certificate2Collection? cas = null;
            if (redis.CaFile is { Length: > 0 } caFile)
            {
                cas = [];
                cas.ImportFromPemFile(caFile);
            }

            var connection = new RedisConnectionOptions { User = redis.User, Password = password, TrustedCas = cas, Timeout = redis.Timeout };
            return (RedisLeaseStore.Connect(redis.Configuration!, storeOptions, connection, redis.ReplicaAcks()), connection);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw new StartupException($"CredBroker refuses to start: the Redis settings cannot be used (CredBroker:Redis:PasswordFile, CaFile, User, Configuration): {e.Message}");
        }
    }

    /// <summary>The checkpoint signer (HMAC from a key file, else the current token signing key) and every signer verification accepts.</summary>
    private static (IAuditSigner Signer, Func<IReadOnlyCollection<IAuditSigner>> Signers) AuditSigners(BrokerOptions options, ISigningKeys keys)
    {
        if (options.Audit.CheckpointKeyFile is { Length: > 0 } file)
        {
            var hmac = new HmacAuditSigner(ReadKey(file));
            return (hmac, () => [hmac]);
        }

        return (new CurrentSigningKeyAuditSigner(keys), () => keys.Published.Select(k => (IAuditSigner)new SigningKeyAuditSigner(k)).ToList());
    }

    private static byte[] ReadKey(string file)
    {
        var raw = File.ReadAllBytes(file);
        var text = System.Text.Encoding.ASCII.GetString(raw).Trim();
        var decoded = new byte[raw.Length];
        var key = Convert.TryFromBase64String(text, decoded, out var length) ? decoded[..length] : raw;
        return key.Length >= 32 ? key : throw new InvalidOperationException($"{file}: the audit checkpoint key must be at least 32 bytes.");
    }
}

/// <summary>Configuration that cannot run; its message says what to set.</summary>
public sealed class StartupException(string message) : Exception(message);
