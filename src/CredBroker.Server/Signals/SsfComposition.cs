using CredBroker.Core.Leases;
using CredBroker.Core.Tokens;
using CredBroker.Server.Hosting;
using CredBroker.Server.Metrics;
using CredBroker.Server.Services;
using Microsoft.AspNetCore.Builder;

namespace CredBroker.Server.Signals;

/// <summary>The SSF transmitter's registrations (the stream store and receivers are registered with the other stores).</summary>
public static class SsfComposition
{
    public static void AddSharedSignals(IServiceCollection services, BrokerOptions options)
    {
        if (!options.Ssf.Enabled)
        {
            return;
        }

        services.AddSingleton(sp => new SsfTransmitter(sp.GetRequiredService<Core.Signals.ISsfStreamStore>(), sp.GetRequiredService<TimedLeaseStore>(),
            sp.GetRequiredService<RotatingSigningKeys>(), sp.GetRequiredService<RevocationNotifier>(), options, sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService(sp => new SsfPushService(sp.GetRequiredService<SsfTransmitter>(), sp.GetRequiredService<RevocationNotifier>(), options,
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<SsfPushService>>()));
    }

    public static void MapSharedSignals(WebApplication app, BrokerOptions options)
    {
        if (options.Ssf.Enabled)
        {
            SsfEndpoints.Map(app, app.Services.GetRequiredService<SsfTransmitter>(), app.Services.GetRequiredService<SsfReceivers>());
        }
    }
}
