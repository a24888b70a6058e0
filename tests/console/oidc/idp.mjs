// A real OpenID Provider for the console browser tests (oidc-provider, the certified Node implementation).
// Usage: node idp.mjs <port> <redirect_uri> [client_id]
// Accounts (any password): viewer@example.com, approver@example.com, admin@example.com (group claims
// the broker maps to roles), nobody@example.com (no group). Sign-in uses the provider's own login form.
// Test use only: it runs on loopback over http with the library's development keys.
import Provider from 'oidc-provider';

const [port, redirectUri, clientId = 'credbroker-console'] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const groups = {
  'viewer@example.com': ['credbroker-viewers'],
  'approver@example.com': ['credbroker-approvers'],
  'admin@example.com': ['credbroker-admins'],
  'nobody@example.com': [],
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    token_endpoint_auth_method: 'none',
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: ['name', 'groups'] },
  conformIdTokenClaims: false,
  cookies: { keys: ['console-tests-only-not-a-secret'] },
  features: { devInteractions: { enabled: true } },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, name: id, groups: groups[id] ?? [] }),
  }),
  // First-party client: no consent screen.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile');
    grant.addOIDCClaims(['sub', 'name', 'groups']);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
const server = provider.listen(port, '127.0.0.1', () => console.log(`idp listening on ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
