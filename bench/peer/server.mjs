// The peer token server for bench/run.sh: node oidc-provider 9.x, client_credentials grant,
// ES256 JWT access tokens (RFC 9068 via resource indicators). Keys and the client secret are
// generated at start; nothing is read from or written to disk. Listens on 127.0.0.1 only.
// Usage: node server.mjs <port>   (run with the folder holding node_modules as NODE_PATH/cwd)
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 0);
const resource = 'urn:credbroker:bench-api';
const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const clientSecret = process.env.PEER_CLIENT_SECRET ?? randomBytes(24).toString('base64url');

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench-agent',
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    id_token_signed_response_alg: 'ES256',
  }],
  jwks: { keys: [{ ...signing, alg: 'ES256', use: 'sig', kid: 'peer-es256' }] },
  ttl: { ClientCredentials: 300 },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'tickets:read tickets:comment',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`peer listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
