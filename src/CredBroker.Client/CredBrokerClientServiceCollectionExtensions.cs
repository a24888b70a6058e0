using System.Security.Cryptography.X509Certificates;
using CredBroker.Client;
using CredBroker.Contracts.V1;
using Grpc.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the CredBroker client: options, the generated clients via IHttpClientFactory, and <see cref="CredBrokerClient"/>.</summary>
public static class CredBrokerClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers the client with settings bound from <paramref name="configuration"/>'s section
    /// <c>CredBroker:Client</c> (<see cref="CredBrokerClientOptions"/>), validated at start-up.
    /// <paramref name="configure"/> runs after binding (e.g. to set a <see cref="CredBrokerClientOptions.CredentialSource"/>).
    /// </summary>
    public static IServiceCollection AddCredBrokerClient(this IServiceCollection services, IConfiguration configuration, Action<CredBrokerClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = services.AddOptions<CredBrokerClientOptions>().Bind(configuration.GetSection(CredBrokerClientOptions.SectionName));
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return services.AddCredBrokerClientCore();
    }

    /// <summary>Registers the client with settings set in code, validated at start-up.</summary>
    public static IServiceCollection AddCredBrokerClient(this IServiceCollection services, Action<CredBrokerClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<CredBrokerClientOptions>().Configure(configure);
        return services.AddCredBrokerClientCore();
    }

    private static IServiceCollection AddCredBrokerClientCore(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<CredBrokerClientOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CredBrokerClientOptions>, CredBrokerClientOptionsValidator>());
        if (services.Any(d => d.ServiceType == typeof(ClientResources)))
        {
            return services; // registered already; the options above still apply
        }

        services.AddSingleton<ClientResources>();
        Configure(services.AddGrpcClient<AgentBroker.AgentBrokerClient>(SetAddress));
        Configure(services.AddGrpcClient<TokenValidation.TokenValidationClient>(SetAddress));
        services.AddTransient(sp =>
        {
            var o = sp.GetRequiredService<IOptions<CredBrokerClientOptions>>().Value;
            return new CredBrokerClient(sp.GetRequiredService<AgentBroker.AgentBrokerClient>(), sp.GetRequiredService<TokenValidation.TokenValidationClient>())
            {
                Timeout = o.Timeout,
                DpopKey = sp.GetRequiredService<ClientResources>().DpopKey,
                DpopUri = o.DpopUri ?? o.Address,
            };
        });
        services.AddTransient<BrokerRevocationFeed>();
        return services;

        static void SetAddress(IServiceProvider sp, Grpc.Net.ClientFactory.GrpcClientFactoryOptions factory) =>
            factory.Address = sp.GetRequiredService<IOptions<CredBrokerClientOptions>>().Value.Address;

        static void Configure(IHttpClientBuilder builder) => builder
            .ConfigurePrimaryHttpMessageHandler(sp => sp.GetRequiredService<ClientResources>().CreateHandler())
            .ConfigureChannel((sp, channel) => BrokerChannel.Configure(channel, sp.GetRequiredService<IOptions<CredBrokerClientOptions>>().Value.Retry))
            .AddCallCredentials((context, metadata, sp) => sp.GetRequiredService<ClientResources>().AddCredentialAsync(context, metadata));
    }

    /// <summary>What the options name, loaded once: certificates, and the credential source.</summary>
    private sealed class ClientResources : IDisposable
    {
        private readonly X509Certificate2? _clientCertificate;
        private readonly X509Certificate2? _trustedRoot;
        private readonly Func<CancellationToken, ValueTask<string>> _credential;

        public ClientResources(IOptions<CredBrokerClientOptions> options)
        {
            var o = options.Value;
            _trustedRoot = string.IsNullOrEmpty(o.TrustedRootFile) ? null : X509Certificate2.CreateFromPemFile(o.TrustedRootFile);
            if (!string.IsNullOrEmpty(o.ClientCertificateFile))
            {
                using var pem = X509Certificate2.CreateFromPemFile(o.ClientCertificateFile, o.ClientKeyFile);
                // Through PKCS#12 so SslStream can use the key on every platform.
                _clientCertificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            }

            DpopKey = !o.UseDpop ? null
                : !string.IsNullOrEmpty(o.DpopKeyFile) ? CredBroker.Validation.DpopKey.FromPem(File.ReadAllText(o.DpopKeyFile))
                : CredBroker.Validation.DpopKey.Generate();
            _credential = o.CredentialSource
                ?? (!string.IsNullOrWhiteSpace(o.CredentialFile) ? ReadFile(o.CredentialFile)
                : o.Credential is { } fixedCredential ? _ => ValueTask.FromResult(fixedCredential)
                : throw new InvalidOperationException($"No workload credential in {CredBrokerClientOptions.SectionName}."));
        }

        /// <summary>The process's DPoP key when <see cref="CredBrokerClientOptions.UseDpop"/> is on (from DpopKeyFile, else generated once).</summary>
        public CredBroker.Validation.DpopKey? DpopKey { get; }

        public SocketsHttpHandler CreateHandler() => BrokerChannel.CreateHandler(_clientCertificate, _trustedRoot);

        public async Task AddCredentialAsync(AuthInterceptorContext context, Metadata metadata) =>
            BrokerChannel.AddBearer(metadata, await _credential(context.CancellationToken));

        public void Dispose()
        {
            _clientCertificate?.Dispose();
            _trustedRoot?.Dispose();
            DpopKey?.Dispose();
        }

        private static Func<CancellationToken, ValueTask<string>> ReadFile(string path) =>
            async ct => (await File.ReadAllTextAsync(path, ct)).Trim();
    }
}
