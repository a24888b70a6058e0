using CredBroker.Contracts.V1;
using CredBroker.Core.Broker;
using CredBroker.Core.Tokens;
using CredBroker.Grpc;
using Google.Protobuf.WellKnownTypes;

namespace CredBroker.Server.Services;

/// <summary>credbroker.v1.TokenValidation: introspection (RFC 7662) and the JWKS, for downstream APIs.</summary>
public sealed class TokenValidationService(TaskBroker broker, StaticSigningKeys keys)
{
    public const string ServiceName = "credbroker.v1.TokenValidation";

    public void Register(GrpcMethodRegistry registry) => registry
        .AddUnary<IntrospectRequest, IntrospectResponse>(ServiceName, "Introspect", IntrospectRequest.Parser, IntrospectAsync)
        .AddUnary<GetSigningKeysRequest, GetSigningKeysResponse>(ServiceName, "GetSigningKeys", GetSigningKeysRequest.Parser, GetSigningKeysAsync);

    private async Task<IntrospectResponse> IntrospectAsync(IntrospectRequest request, GrpcCallContext context)
    {
        if (request.Token.Length == 0)
        {
            throw new RpcException(StatusCode.InvalidArgument, "token is required.");
        }

        var result = await CallGuard.RunAsync(() => broker.IntrospectAsync(request.Token, context.CancellationToken));
        if (result.Claims is not { } c)
        {
            return new IntrospectResponse { Active = false };
        }

        return new IntrospectResponse
        {
            Active = true,
            Scope = c.Scope,
            ClientId = c.ClientId,
            Sub = c.Subject,
            Aud = c.Audience,
            Iss = c.Issuer,
            Jti = c.TokenId,
            Exp = Timestamp.FromDateTimeOffset(c.ExpiresAt),
            Iat = Timestamp.FromDateTimeOffset(c.IssuedAt),
            Nbf = Timestamp.FromDateTimeOffset(c.NotBefore),
            TokenType = "Bearer",
            LeaseId = c.LeaseId,
            TaskId = c.TaskId,
            Owner = c.Owner,
            ActSub = c.ActorSubject,
        };
    }

    private Task<GetSigningKeysResponse> GetSigningKeysAsync(GetSigningKeysRequest request, GrpcCallContext context)
    {
        var response = new GetSigningKeysResponse { JwksJson = keys.JwksJson };
        foreach (var key in keys.Published)
        {
            response.Keys.Add(new Contracts.V1.SigningKey { Kid = key.Kid, Kty = "EC", Crv = "P-256", X = key.X, Y = key.Y, Alg = "ES256", Use = "sig" });
        }

        return Task.FromResult(response);
    }
}
