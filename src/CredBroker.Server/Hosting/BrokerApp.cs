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
using CredBroker.Server.WebConsole;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace CredBroker.Server.Hosting;

/// <summary>
/// The composition root: validated options, then small registration methods — the stores (the
/// container owns and disposes them), the broker, background services, gRPC — and the pipeline.
/// </summary>
public static class BrokerApp
{
    public static WebApplication Create(string[] args, TextWriter? console = null)
    {
        console ??= Console.Out;
        var dev = args.Contains("--dev", StringComparer.Ordinal);
        var builder = WebApplication.CreateSlimBuilder(args.Where(a => a != "--dev").ToArray());
        var options = AddOptions(builder, dev);
        Telemetry.AddBrokerLogging(builder, options.Dev);
        Telemetry.AddBrokerTelemetry(builder.Services, options.Telemetry);
        builder.Services.AddSingleton(TimeProvider.System);
        if (options.Dev)
        {
            AddDevStores(builder.Services, options, console);
        }
        else
        {
            AddProductionStores(builder.Services, options);
        }

        AddBroker(builder.Services, options);
        AddBackgroundServices(builder.Services, options);
        Signals.SsfComposition.AddSharedSignals(builder.Services, options);
        // A background service that fails (a bug, not an outage: outages are retried inside each service)
        // stops the host, and RunAsync turns that into a non-zero exit code so the orchestrator sees a crash.
        builder.Services.Configure<HostOptions>(o => o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost);
        ConfigureKestrel(builder, options);
        AddGrpc(builder.Services, options.Listen);
        ConsoleHost.AddConsole(builder.Services, options);

        var app = builder.Build();
        MapPipeline(app, options);
        return app;
    }

    /// <summary>Exit code of a host stopped because a background service failed.</summary>
    public const int BackgroundServiceFailedExitCode = 3;

    /// <summary>
    /// Runs the broker until it stops; returns 0 for a requested stop, or <see cref="BackgroundServiceFailedExitCode"/>
    /// when the host stopped itself because a background service failed (never 0 for a crash).
    /// </summary>
    public static async Task<int> RunAsync(WebApplication app, TextWriter? error = null)
    {
        // Resolved before the run: RunAsync disposes the container when the host stops.
        var services = app.Services.GetServices<IHostedService>().OfType<BackgroundService>().ToList();
        await app.RunAsync();
        var failed = services.Where(s => s.ExecuteTask is { IsFaulted: true }).ToList();
        if (failed.Count == 0)
        {
            return 0;
        }

        await (error ?? Console.Error).WriteLineAsync("CredBroker stopped: background service(s) failed: "
            + string.Join("; ", failed.Select(s => s.GetType().Name + ": " + s.ExecuteTask!.Exception!.GetBaseException().Message)));
        return BackgroundServiceFailedExitCode;
    }

    /// <summary>
    /// <c>CredBroker</c> bound through the options system and validated (<see cref="BrokerOptionsValidator"/>
    /// names each bad setting, also on start). The composition needs the values now, so the same
    /// validation runs here first: settings that cannot work stop the start before anything connects.
    /// </summary>
    private static BrokerOptions AddOptions(WebApplicationBuilder builder, bool dev)
    {
        builder.Services.AddSingleton<IValidateOptions<BrokerOptions>, BrokerOptionsValidator>();
        builder.Services.AddOptions<BrokerOptions>().BindConfiguration("CredBroker").PostConfigure(o => o.Dev |= dev).ValidateOnStart();
        var options = BrokerOptions.Bind(builder.Configuration, dev);
        if (new BrokerOptionsValidator().Validate(null, options) is { Failed: true } result)
        {
            throw new StartupException("CredBroker refuses to start:" + string.Concat(result.Failures.Select(p => Environment.NewLine + "  - " + p))
                + (options.Dev ? string.Empty : Environment.NewLine + "  (for a local trial run with --dev)"));
        }

        builder.Services.AddSingleton(options);
        return options;
    }

    /// <summary>Dev mode: in-memory store, audit log and key schedule; generated keys; printed dev secrets.</summary>
    private static void AddDevStores(IServiceCollection services, BrokerOptions options, TextWriter console)
    {
        DevMode.CheckListenAddress(options, console);
        var agentSecret = DevMode.Secret("CREDBROKER_DEV_SECRET");
        var operatorSecret = DevMode.Secret("CREDBROKER_DEV_OPERATOR_SECRET");
        if (agentSecret == operatorSecret)
        {
            throw new StartupException("CREDBROKER_DEV_SECRET and CREDBROKER_DEV_OPERATOR_SECRET must differ: agent and operator credentials are never interchangeable.");
        }

        // Parsed now, so a bad policy file stops the start before the banner promises a broker.
        var policy = options.AgentsFile is { Length: > 0 } file
            ? PolicyHolder.FromFile(file, TimeProvider.System)
            : new PolicyHolder(() => PolicyFile.Parse(DevMode.SamplePolicy, "dev sample policy"), TimeProvider.System);
        console.WriteLine(DevMode.Banner(options, agentSecret, operatorSecret));
        services.AddSingleton(policy);
        // Dev keys are generated at start (and on RotateSigningKey); the schedule lives in memory.
        services.AddSingleton(sp => new RotatingSigningKeys(new KeyRing([], null, allowGenerate: true), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IKeyScheduleStore, InMemoryKeyScheduleStore>();
        services.AddSingleton<ILeaseStore>(_ => new InMemoryLeaseStore(options.Leases.StoreOptions()));
        services.AddSingleton<Core.Dpop.IDpopReplayStore>(sp => new Core.Dpop.InMemoryDpopReplayStore(sp.GetRequiredService<TimeProvider>(), options.Dpop.ReplayCacheSize));
        services.AddSingleton<IAuditLog>(sp => new InMemoryAuditLog(sp.GetRequiredService<AuditSigning>().Signer, options.Audit.LogOptions(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => AuditSigning.For(options, sp.GetRequiredService<RotatingSigningKeys>()));
        services.AddSingleton<Core.Signals.ISsfStreamStore>(sp => new Core.Signals.InMemory.InMemorySsfStreamStore(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(Signals.SsfReceivers.Dev(agentSecret));
        options.Ssf.AllowHttpPushEndpoints = true;
        services.AddSingleton(new CallerAuthenticators(
            new DevSecretAuthenticator(agentSecret, DevMode.AgentId, DevMode.AgentId),
            new DevSecretAuthenticator(operatorSecret, DevMode.OperatorId, agentId: null, new HashSet<OperatorRole> { OperatorRole.Admin })));
        services.AddSingleton(new ConsoleDevSignIn(operatorSecret));
    }

    /// <summary>Production: Redis for leases, the key schedule and the audit chain; keys from mounted files; workload identity.</summary>
    private static void AddProductionStores(IServiceCollection services, BrokerOptions options)
    {
        // Identity entries in the policy file are bound to a trusted source (issue|subject, mtls|spiffe-id).
        var identitySources = new IdentitySources(options.Identity.Issuers.Select(i => i.Issuer), options.Listen.Tls?.ClientCaFile is { Length: > 0 });
        services.AddSingleton(identitySources);
        services.AddSingleton(new PolicyHolder(() => identitySources.Load(options.AgentsFile!), TimeProvider.System));
        services.AddSingleton(sp => new RotatingSigningKeys(new KeyRing(options.Signing.KeyFiles, options.Signing.KeyDirectory), sp.GetRequiredService<TimeProvider>()));
        var connection = RedisConnection(options.Redis);
        if (options.Clock.Source == "redis")
        {
            // One clock for every replica: this host's clock corrected by its offset from Redis TIME.
            services.Replace(ServiceDescriptor.Singleton<TimeProvider>(sp =>
            {
                var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("CredBroker.Clock");
                var clock = sp.GetRequiredService<RedisLeaseStore>().Clock(options.Clock.SyncInterval, problem => log.LogWarning("Clock: {Problem}", problem));
                // The services that start next (key schedule, sweeper) should read the corrected clock; if Redis is
                // slow to answer, start anyway: /readyz stays 503 until the clock is synchronized.
                clock.WaitUntilSynced(TimeSpan.FromSeconds(5));
                if (clock.Offset.Duration() > options.Clock.WarnSkew)
                {
                    log.LogWarning("This host's clock is {OffsetMs:0} ms off Redis TIME; lease and token times use the corrected clock", -clock.Offset.TotalMilliseconds);
                }

                return clock;
            }));
        }

        services.AddSingleton(_ => Connected(() => RedisLeaseStore.Connect(options.Redis.Configuration!, options.Leases.StoreOptions(), connection, options.Redis.ReplicaAcks())));
        services.AddSingleton<ILeaseStore>(sp => sp.GetRequiredService<RedisLeaseStore>());
        services.AddSingleton<IKeyScheduleStore>(sp => sp.GetRequiredService<RedisLeaseStore>().KeySchedule());
        services.AddSingleton<Core.Signals.ISsfStreamStore>(sp => sp.GetRequiredService<RedisLeaseStore>().SsfStreams());
        services.AddSingleton(Signals.SsfReceivers.FromOptions(options.Ssf));
        services.AddSingleton<Core.Dpop.IDpopReplayStore>(sp => sp.GetRequiredService<RedisLeaseStore>().DpopReplay());
        services.AddSingleton(sp => AuditSigning.For(options, sp.GetRequiredService<RotatingSigningKeys>()));
        services.AddSingleton<IAuditLog>(sp => Connected(() => RedisAuditLog.Connect(options.Audit.RedisConfiguration ?? options.Redis.Configuration!,
            sp.GetRequiredService<AuditSigning>().Signer, options.Audit.LogOptions(), sp.GetRequiredService<TimeProvider>(), connection: connection,
            // Audit batches wait for the replicas together with every lease write (WaitForLeaseWrites): the mint path then
            // survives a failover whole; with WaitReplicas alone only the writes that end access wait, and minting goes on
            // while a replica is away (docs/operations.md, "Durability per write class").
            replicaAcks: options.Redis.ReplicaAcks() is { AllLeaseWrites: true } acks ? acks : null)));
        services.AddSingleton(sp =>
        {
            var time = sp.GetRequiredService<TimeProvider>();
            var policy = sp.GetRequiredService<PolicyHolder>();
            var directory = new OperatorDirectory(options.Operators);
            var operatorJwt = options.Operators.Issuers.Count > 0 ? new WorkloadJwtAuthenticator(options.Operators.Issuers, time, options.Identity.VerifiedCredentialCacheSize) : null;
            var agentJwt = options.Identity.Issuers.Count > 0 ? new WorkloadJwtAuthenticator(options.Identity.Issuers, time, options.Identity.VerifiedCredentialCacheSize) : null;
            var certificates = options.Identity.Certificates.Select(c => new SubjectPattern(c.Subject, c.Agent)).ToList();
            return new CallerAuthenticators(
                new AgentAuthenticator(agentJwt, certificates, directory, (source, subject) => identitySources.Resolve(policy.Current, source, subject)),
                new OperatorAuthenticator(operatorJwt, directory));
        });
    }

    /// <summary>The broker itself: Core's use cases over the (timed) store, the audit service, keys and policy.</summary>
    private static void AddBroker(IServiceCollection services, BrokerOptions options)
    {
        services.AddSingleton<BrokerMetrics>();
        services.AddSingleton(sp => new TimedLeaseStore(sp.GetRequiredService<ILeaseStore>(), sp.GetRequiredService<BrokerMetrics>()));
        services.AddSingleton(sp => new TracedAuditLog(sp.GetRequiredService<IAuditLog>()));
        services.AddSingleton<AuditFollow>();
        if (options.Audit.JsonLinesFile is { Length: > 0 } jsonLines)
        {
            services.AddSingleton<IAuditSink>(_ => new JsonLinesAuditSink(jsonLines));
        }

        services.AddSingleton(sp => new AuditService(sp.GetRequiredService<TracedAuditLog>(), sp.GetServices<IAuditSink>().ToList(),
            [sp.GetRequiredService<BrokerMetrics>(), sp.GetRequiredService<AuditFollow>(), .. sp.GetServices<IAuditObserver>()]));
        // Refusals (denials, refused operator credentials) are aggregated per source and window before they reach the chain.
        services.AddSingleton(sp => new RefusalAggregator(sp.GetRequiredService<AuditService>(), sp.GetRequiredService<TimeProvider>(), options.Audit.RefusalWindow,
            sp.GetRequiredService<BrokerMetrics>()));
        services.AddSingleton(sp => new TokenMinter(sp.GetRequiredService<RotatingSigningKeys>(), options.Issuer, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp =>
        {
            var time = sp.GetRequiredService<TimeProvider>();
            var policy = sp.GetRequiredService<PolicyHolder>();
            var keys = sp.GetRequiredService<RotatingSigningKeys>();
            var broker = new TaskBroker(policy, policy, sp.GetRequiredService<TimedLeaseStore>(), sp.GetRequiredService<TokenMinter>(),
                new TokenReader(keys, options.Issuer, time), time, sp.GetRequiredService<RefusalAggregator>(), UserTokens(options, time), options.Delegation.CoreOptions());
            var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("CredBroker.Policy");
            broker.Policy.DenialBurst += burst => log.LogWarning(
                "Denial burst: agent {Agent} was denied {Denials} times within {Window} (last rules {Rules}); action {Action}",
                burst.AgentId, burst.Denials, burst.Window, string.Join(",", burst.RuleIds), burst.Action);
            return broker;
        });
        services.AddSingleton(sp => new ApprovalDesk(sp.GetRequiredService<PolicyHolder>(), sp.GetRequiredService<TaskBroker>().Policy, sp.GetRequiredService<TimedLeaseStore>(),
            sp.GetRequiredService<TokenMinter>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<AuditService>()));
        services.AddSingleton(sp =>
        {
            var policy = sp.GetRequiredService<PolicyHolder>();
            return new KeyRotation(sp.GetRequiredService<RotatingSigningKeys>(), sp.GetRequiredService<IKeyScheduleStore>(), options.Signing.RotationOptions(),
                () => policy.Current.Agents.All.Max(a => a.MaxTokenTtl), sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton(sp =>
        {
            var policy = sp.GetRequiredService<PolicyHolder>();
            return new CachedReadiness(
                new Readiness(sp.GetRequiredService<TimedLeaseStore>(), sp.GetRequiredService<TracedAuditLog>(), sp.GetRequiredService<RotatingSigningKeys>(), () => policy.Current.Agents,
                    ClockProblem(sp.GetRequiredService<TimeProvider>())),
                sp.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton(sp => new RevocationNotifier(sp.GetRequiredService<TimedLeaseStore>(), options.Leases.RevocationPollInterval));
        services.AddSingleton(sp => new LeaseAdministration(sp.GetRequiredService<TimedLeaseStore>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<AuditService>(), sp.GetRequiredService<PolicyHolder>()));

        // The services Grpc.AspNetCore activates.
        services.AddSingleton(sp => new DpopProofCheck(options.Dpop, options.Dpop.AgentListenerUris(options.Listen), sp.GetRequiredService<Core.Dpop.IDpopReplayStore>(),
            sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new AgentBrokerService(sp.GetRequiredService<TaskBroker>(), sp.GetRequiredService<ApprovalDesk>(), sp.GetRequiredService<RevocationNotifier>(),
            sp.GetRequiredService<DpopProofCheck>()));
        services.AddSingleton(sp => new TokenValidationService(sp.GetRequiredService<TaskBroker>(), sp.GetRequiredService<RotatingSigningKeys>(), sp.GetRequiredService<TimedLeaseStore>(),
            sp.GetRequiredService<RevocationNotifier>(), sp.GetRequiredService<BrokerMetrics>()));
        services.AddSingleton(sp =>
        {
            var time = sp.GetRequiredService<TimeProvider>();
            var audit = sp.GetRequiredService<AuditService>();
            var keys = sp.GetRequiredService<RotatingSigningKeys>();
            var partial = new PartialListings(sp.GetRequiredService<ILogger<PartialListings>>());
            return new OperatorService(
                sp.GetRequiredService<LeaseAdministration>(), sp.GetRequiredService<RevocationNotifier>(),
                new KeyOperations(sp.GetRequiredService<KeyRotation>(), keys, time, audit, sp.GetRequiredService<ILogger<KeyOperations>>()),
                new AuditOperations(sp.GetRequiredService<TracedAuditLog>(), sp.GetRequiredService<AuditSigning>().Verifiers, sp.GetRequiredService<AuditFollow>(), options.Audit.FollowPollInterval),
                new PolicyOperations(sp.GetRequiredService<PolicyHolder>(), sp.GetRequiredService<TaskBroker>().Policy, sp.GetRequiredService<ApprovalDesk>(), audit, time, partial),
                partial);
        });
    }

    /// <summary>Sweeper, revocation notifier, key schedule, policy watcher, the open-lease gauge and gRPC health, each a hosted service.</summary>
    private static void AddBackgroundServices(IServiceCollection services, BrokerOptions options)
    {
        services.AddHostedService(sp => sp.GetRequiredService<RevocationNotifier>());
        services.AddHostedService(sp => new SweeperService(
            new LeaseSweeper(sp.GetRequiredService<TimedLeaseStore>(), sp.GetRequiredService<TimeProvider>(), audit: sp.GetRequiredService<AuditService>()),
            options.Leases.SweepInterval, sp.GetRequiredService<ILogger<SweeperService>>(), sp.GetRequiredService<BrokerMetrics>()));
        services.AddHostedService(sp => new KeyScheduleService(
            sp.GetRequiredService<KeyRotation>(), options.Signing.ScheduleRefreshInterval, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<KeyScheduleService>>()));
        if (options.AgentsFile is { Length: > 0 } policyFile)
        {
            services.AddHostedService(sp => new PolicyWatcherService(sp.GetRequiredService<PolicyHolder>(), policyFile, sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<AuditService>(), sp.GetRequiredService<ILogger<PolicyWatcherService>>()));
        }

        services.AddHostedService(sp => new ActiveLeaseCounter(sp.GetRequiredService<TimedLeaseStore>(), sp.GetRequiredService<BrokerMetrics>(), TimeSpan.FromSeconds(5)));
        services.AddHostedService(sp => new RefusalFlushService(sp.GetRequiredService<RefusalAggregator>(), sp.GetRequiredService<ILogger<RefusalFlushService>>()));
        // One readiness check per second feeds gRPC health and /readyz alike.
        services.AddHostedService(sp => new ListenerHealthRefresher(sp.GetRequiredService<GrpcListeners>(), sp.GetRequiredService<CachedReadiness>().RefreshAsync,
            TimeSpan.FromSeconds(1), sp.GetRequiredService<ILogger<ListenerHealthRefresher>>()));
    }

    private static void MapPipeline(WebApplication app, BrokerOptions options)
    {
        Telemetry.UseBrokerRequestLogging(app);
        app.UseRouting();
        app.UseGrpcRequestChecks(new GrpcDeadlines(options.Listen.Grpc.MaxUnaryDeadline, options.Listen.Grpc.MaxStreamingDeadline));
        ConsoleHost.Map(app, options);
        app.MapGrpcService<AgentBrokerService>();
        app.MapGrpcService<TokenValidationService>();
        app.MapGrpcService<OperatorService>();
        app.MapGrpcService<ListenerHealthService>();
        app.MapGrpcService<ListenerReflectionV1Service>();
        app.MapGrpcService<ListenerReflectionV1AlphaService>();
        WellKnownEndpoints.Map(app, app.Services.GetRequiredService<RotatingSigningKeys>(), options.Issuer, app.Services.GetRequiredService<CachedReadiness>(), options.Signing.PublishLead,
            options.Health.StartupGrace);
        Signals.SsfComposition.MapSharedSignals(app, options);
        Telemetry.MapMetrics(app);
    }

    /// <summary>
    /// Grpc.AspNetCore with the limits set explicitly, gzip that stops at the receive limit, the one
    /// broker interceptor, and per-listener service sets, health and reflection.
    /// </summary>
    private static void AddGrpc(IServiceCollection services, BrokerOptions.ListenOptions listen)
    {
        services.AddSingleton(sp =>
        {
            var authenticators = sp.GetRequiredService<CallerAuthenticators>();
            var operators = new AuditedAuthenticator(authenticators.Operator, sp.GetRequiredService<RefusalAggregator>(), sp.GetRequiredService<TimeProvider>());
            return new GrpcListeners(
            [
                new GrpcListener("agent", listen.AgentPort, authenticators.Agent, operators: false, [AgentBroker.Descriptor, TokenValidation.Descriptor]),
                new GrpcListener("operator", listen.OperatorPort, operators, operators: true, [Operator.Descriptor]),
            ]);
        });
        var grpc = listen.Grpc;
        services.AddSingleton(new StreamLimiter(grpc.MaxStreamsPerIdentity));
        services.AddGrpcLayer(grpc.MaxReceiveMessageSize, grpc.MaxSendMessageSize, grpc.CompressResponses);
        services.Configure<GrpcServiceOptions>(o => o.Interceptors.Add<BrokerCallInterceptor>());
        services.AddSingleton<ListenerHealthService>();
        services.AddSingleton<ListenerReflectionV1Service>();
        services.AddSingleton<ListenerReflectionV1AlphaService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ListenerEndpointPolicy>());
    }

    private static void ConfigureKestrel(WebApplicationBuilder builder, BrokerOptions options) =>
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var listen = options.Listen;
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

            ConsoleHost.Listen(kestrel, options);
        });

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

    /// <summary>Not ready while the Redis-corrected clock has no sample yet (the host's own clock may be seconds off).</summary>
    private static Func<string?> ClockProblem(TimeProvider time) =>
        () => time is RedisClock { IsSynced: false } ? "not yet synchronized with Redis TIME (lease deadlines would use this host's own clock)" : null;

    /// <summary>Delegation on behalf of users is on only with trusted user-token issuers; settings that cannot work stop the start (dev mode too).</summary>
    private static Core.Delegation.ISubjectTokenValidator UserTokens(BrokerOptions options, TimeProvider time) =>
        options.Delegation.Issuers.Count == 0
            ? Core.Delegation.NoUserTokenIssuers.Instance
            : new UserTokenValidator(options.Delegation.Issuers, time);

    /// <summary>The connection settings every Redis connection uses (password file, private CA, ACL user, timeout).</summary>
    private static RedisConnectionOptions RedisConnection(BrokerOptions.RedisOptions redis)
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

            return new RedisConnectionOptions { User = redis.User, Password = password, TrustedCas = cas, Timeout = redis.Timeout };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new StartupException($"CredBroker refuses to start: the Redis settings cannot be used (CredBroker:Redis:PasswordFile, CaFile): {e.Message}");
        }
    }

    private static T Connected<T>(Func<T> connect)
    {
        try
        {
            return connect();
        }
        catch (ArgumentException e)
        {
            throw new StartupException($"CredBroker refuses to start: the Redis settings cannot be used (CredBroker:Redis:Configuration, User): {e.Message}");
        }
    }
}

/// <summary>Configuration that cannot run; its message says what to set.</summary>
public sealed class StartupException(string message) : Exception(message);

/// <summary>The agent listener's and the operator listener's authenticators.</summary>
public sealed record CallerAuthenticators(ICallerAuthenticator Agent, ICallerAuthenticator Operator);

/// <summary>The audit checkpoint signer, and every signer verification accepts.</summary>
public sealed record AuditSigning(IAuditSigner Signer, Func<IReadOnlyCollection<IAuditSigner>> Verifiers)
{
    /// <summary>HMAC from <c>Audit:CheckpointKeyFile</c>, else the current token signing key (verified with every published key).</summary>
    public static AuditSigning For(BrokerOptions options, ISigningKeys keys)
    {
        if (options.Audit.CheckpointKeyFile is { Length: > 0 } file)
        {
            var hmac = new HmacAuditSigner(ReadKey(file));
            return new AuditSigning(hmac, () => [hmac]);
        }

        return new AuditSigning(new CurrentSigningKeyAuditSigner(keys), () => keys.Published.Select(k => (IAuditSigner)new SigningKeyAuditSigner(k)).ToList());
    }

    private static byte[] ReadKey(string file)
    {
        var raw = File.ReadAllBytes(file);
        var text = System.Text.Encoding.ASCII.GetString(raw).Trim();
        var decoded = new byte[raw.Length];
        var key = Convert.TryFromBase64String(text, decoded, out var length) ? decoded[..length] : raw;
        return key.Length >= 32 ? key : throw new StartupException($"{file}: the audit checkpoint key must be at least 32 bytes.");
    }
}
