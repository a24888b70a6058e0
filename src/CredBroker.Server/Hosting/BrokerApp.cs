using CredBroker.Core.Agents;
using CredBroker.Core.Audit;
using CredBroker.Core.Audit.InMemory;
using CredBroker.Core.Broker;
using CredBroker.Core.Leases;
using CredBroker.Core.Leases.InMemory;
using CredBroker.Core.Policy;
using CredBroker.Core.Policy.File;
using CredBroker.Core.Tokens;
using CredBroker.Grpc;
using Grpc.Health.V1;
using CredBroker.Redis;
using CredBroker.Server.Audit;
using CredBroker.Server.Auth;
using CredBroker.Server.Http;
using CredBroker.Server.Metrics;
using CredBroker.Server.Services;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
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
        var composition = options.Dev ? ComposeDev(options, console, time) : ComposeProduction(options, time);
        var keys = composition.Keys;
        var metrics = new BrokerMetrics(new MetricsRegistry());
        var store = new TimedLeaseStore(composition.Store, metrics.StoreDuration);
        var follow = new AuditFollow();
        IReadOnlyList<IAuditSink> sinks = options.Audit.JsonLinesFile is { Length: > 0 } jsonLines ? [new JsonLinesAuditSink(jsonLines)] : [];
        var audit = new AuditService(composition.AuditLog, sinks, [metrics, follow]);
        var minter = new TokenMinter(keys, options.Issuer, time);
        var policy = composition.Policy;
        var broker = new TaskBroker(policy, policy, store, minter, new TokenReader(keys, options.Issuer, time), time, audit,
            UserTokens(options, time), options.Delegation.CoreOptions());
        var approvals = new ApprovalDesk(policy, broker.Policy, store, minter, time, audit);
        if (options.AgentsFile is { Length: > 0 } policyFile)
        {
            builder.Services.AddHostedService(services => new PolicyWatcherService(policy, policyFile, time, audit, services.GetRequiredService<ILogger<PolicyWatcherService>>()));
        }

        var rotation = new KeyRotation(keys, composition.KeySchedule, options.Signing.RotationOptions(),
            () => policy.Current.Agents.All.Max(a => a.MaxTokenTtl), time);
        var readiness = new Readiness(store, composition.AuditLog, keys, () => policy.Current.Agents);
        Func<CancellationToken, Task<bool>> ready = async ct => (await readiness.CheckAsync(ct)).Ready;
        metrics.Registry.GaugeAsync("credbroker_active_leases", "Open leases in the expiry index (all replicas).", async ct => await store.CountOpenAsync(ct));

        builder.Services.AddHostedService(services => new KeyScheduleService(
            rotation, options.Signing.ScheduleRefreshInterval, time, services.GetRequiredService<ILogger<KeyScheduleService>>()));

        var notifier = new RevocationNotifier(store, options.Leases.RevocationPollInterval);
        builder.Services.AddHostedService(_ => notifier);
        builder.Services.AddHostedService(services => new SweeperService(
            new LeaseSweeper(store, time, audit: audit), options.Leases.SweepInterval, services.GetRequiredService<ILogger<SweeperService>>(), metrics));

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
            .Use(metrics.Interceptor())
            .Use(CallGuard.Authenticate(composition.AgentAuthenticator, openServices));
        new AgentBrokerService(broker, approvals, notifier).Register(agentMethods);
        new TokenValidationService(broker, keys, store, notifier, metrics.RevocationFeedLag).Register(agentMethods);
        new HealthService(ready, [AgentBrokerService.ServiceName, TokenValidationService.ServiceName]).Register(agentMethods);
        agentMethods.AddServerReflection(
            Contracts.V1.AgentBrokerReflection.Descriptor, Contracts.V1.TokenValidationReflection.Descriptor, HealthReflection.Descriptor);

        var operatorMethods = new GrpcMethodRegistry()
            .Use(callLog)
            .Use(metrics.Interceptor())
            .Use(CallGuard.Authenticate(new AuditedAuthenticator(composition.OperatorAuthenticator, audit, time), openServices))
            .Use(CallGuard.AuthorizeOperators(openServices));
        new OperatorService(new LeaseAdministration(store, time, audit), notifier).Register(operatorMethods);
        new KeysOperatorService(rotation, keys, time, audit, app.Services.GetRequiredService<ILogger<KeysOperatorService>>()).Register(operatorMethods);
        new AuditOperatorService(composition.AuditLog, composition.AuditSigners, follow, options.Audit.FollowPollInterval).Register(operatorMethods);
        new PolicyOperatorService(policy, broker.Policy, approvals, audit, time).Register(operatorMethods);
        new HealthService(ready, [OperatorService.ServiceName]).Register(operatorMethods);
        operatorMethods.AddServerReflection(Contracts.V1.OperatorReflection.Descriptor, Contracts.V1.OperatorAuditReflection.Descriptor, HealthReflection.Descriptor);

        app.MapWhen(http => http.Connection.LocalPort == listen.AgentPort, branch => branch.UseGrpcMethods(agentMethods, grpcOptions));
        app.MapWhen(http => http.Connection.LocalPort == listen.OperatorPort, branch => branch.UseGrpcMethods(operatorMethods, grpcOptions));
        WellKnownEndpoints.Map(app, keys, options.Issuer, readiness, metrics.Registry, options.Signing.PublishLead);
        app.Lifetime.ApplicationStopped.Register(() =>
        {
            (composition.Store as IDisposable)?.Dispose();
            (composition.AuditLog as IDisposable)?.Dispose();
            foreach (var sink in sinks)
            {
                (sink as IDisposable)?.Dispose();
            }
        });
        return app;
    }

    private sealed record Composition(
        ILeaseStore Store, RotatingSigningKeys Keys, IKeyScheduleStore KeySchedule, PolicyHolder Policy, ICallerAuthenticator AgentAuthenticator, ICallerAuthenticator OperatorAuthenticator,
        IAuditLog AuditLog, Func<IReadOnlyCollection<IAuditSigner>> AuditSigners);

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

    private static Composition ComposeDev(BrokerOptions options, TextWriter console, TimeProvider time)
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
