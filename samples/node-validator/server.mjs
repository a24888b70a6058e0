// A downstream API in Node that accepts CredBroker tokens.
//
// * validates access tokens offline with jose against the broker's JWKS (ES256, typ at+jwt, iss, aud,
//   exp/nbf) and enforces a scope per route;
// * learns revocations by SSF push delivery (RFC 8935): at start it creates (or, with --state-file,
//   re-points) a push stream at its own POST /ssf/events, which accepts only the broker's
//   Authorization secret, verifies each Security Event Token (typ secevent+jwt, ES256, iss, aud),
//   applies the CAEP session-revoked event and answers 202. The broker retries with backoff until it
//   gets an answer, so a validator that was down receives what it missed when it is back;
// * enforces DPoP binding (RFC 9449) when a token carries cnf.jkt: `Authorization: DPoP <token>` and a
//   `DPoP` proof (typ dpop+jwt, embedded public jwk whose RFC 7638 thumbprint is cnf.jkt, htm, htu, iat
//   window, jti replay, ath); a bound token presented as Bearer is refused.
//
// Run: SSF_RECEIVER_SECRET=... node server.mjs --broker http://127.0.0.1:5400 --audience demo-api --scope demo:read
import http from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as jose from 'jose';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const PUSH = 'urn:ietf:rfc:8935';
const DPOP_ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'EdDSA'];

const { values: opt } = parseArgs({
  options: {
    broker: { type: 'string', default: process.env.CREDBROKER_HTTP ?? 'http://127.0.0.1:5400' },
    issuer: { type: 'string' },
    audience: { type: 'string', default: 'demo-api' },
    scope: { type: 'string', default: 'demo:read' },
    port: { type: 'string', default: '5420' },
    'receiver-secret-file': { type: 'string' },
    'state-file': { type: 'string' },
  },
});
const receiverSecret = opt['receiver-secret-file'] ? readFileSync(opt['receiver-secret-file'], 'utf8').trim() : process.env.SSF_RECEIVER_SECRET;
if (!receiverSecret) {
  console.error('set SSF_RECEIVER_SECRET or --receiver-secret-file');
  process.exit(2);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const revokedLeases = new Map(); // lease_id -> deny_until
const quarantined = new Map(); // agent_id -> tokens issued before this are invalid
const proofsSeen = new Map(); // DPoP jti -> expiry (ms)
let applied = 0;

async function brokerJson(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${receiverSecret}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) {
    const err = new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
    err.status = res.status;
    throw err;
  }
  return res.status === 204 ? null : res.json();
}

const meta = await (await fetch(`${opt.broker.replace(/\/$/, '')}/.well-known/ssf-configuration`)).json();
if (!meta.delivery_methods_supported?.includes(PUSH)) throw new Error('the broker does not offer push delivery');
const issuer = opt.issuer ?? meta.issuer;
const jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri), { cooldownDuration: 1000, cacheMaxAge: 60_000 });

// The state file keeps the stream id and the push secret, so a restarted validator gets its backlog.
let state = opt['state-file'] && existsSync(opt['state-file']) ? JSON.parse(readFileSync(opt['state-file'], 'utf8')) : {};
state.pushSecret ??= b64url(randomBytes(32));
const expectedAuthorization = Buffer.from(`Bearer ${state.pushSecret}`);

function applyEvent(event) {
  applied++;
  if (event.revocation === 'agent') {
    quarantined.set(event.agent_id, Math.max(quarantined.get(event.agent_id) ?? 0, event.issued_before));
  } else {
    revokedLeases.set(event.lease_id, Math.max(revokedLeases.get(event.lease_id) ?? 0, event.deny_until ?? 0));
  }
  const now = Date.now() / 1000;
  for (const [lease, until] of revokedLeases) if (until < now - 60) revokedLeases.delete(lease);
}

const isRevoked = (claims) =>
  revokedLeases.has(claims.lease_id) || (quarantined.has(claims.client_id) && claims.iat < quarantined.get(claims.client_id));

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// RFC 8935: the broker POSTs one SET per request.
async function receiveSet(req, res, stream) {
  const presented = Buffer.from(req.headers.authorization ?? '');
  if (presented.length !== expectedAuthorization.length || !timingSafeEqual(presented, expectedAuthorization)) {
    return reply(res, 401, { err: 'authentication_failed', description: 'wrong Authorization' });
  }
  if (!(req.headers['content-type'] ?? '').startsWith('application/secevent+jwt')) {
    return reply(res, 400, { err: 'invalid_request', description: 'expected application/secevent+jwt' });
  }
  if (!stream) {
    // Still starting (the stream is being re-pointed here): not ready is not a bad SET, so ask for a retry.
    return reply(res, 503, { error: 'temporarily_unavailable', error_description: 'starting' });
  }
  let payload;
  try {
    ({ payload } = await jose.jwtVerify(await readBody(req), jwks, { issuer, audience: stream.aud, typ: 'secevent+jwt', algorithms: ['ES256'], requiredClaims: ['iat', 'jti'] }));
  } catch (e) {
    // A 400 is final (the broker will not send this SET again): only for a SET that is bad. Anything
    // else (the JWKS unreachable, ...) is a 503, so the broker retries.
    const err = e.code === 'ERR_JWKS_NO_MATCHING_KEY' || e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'invalid_key'
      : e.claim === 'iss' ? 'invalid_issuer' : e.claim === 'aud' ? 'invalid_audience'
      : e.code?.startsWith('ERR_JW') ? 'invalid_request' : null;
    return err ? reply(res, 400, { err, description: e.message }) : reply(res, 503, { error: 'temporarily_unavailable', error_description: e.message });
  }
  const event = payload.events?.[SESSION_REVOKED];
  if (event) applyEvent(event);
  res.writeHead(202).end();
}

async function checkDpop(req, token, jkt, scheme, url) {
  if (!jkt) return 'a DPoP scheme needs a DPoP-bound token (cnf.jkt)';
  if (scheme !== 'dpop') return 'this token is DPoP-bound: present it with Authorization: DPoP and a DPoP proof';
  const proof = req.headers.dpop;
  if (typeof proof !== 'string' || proof.includes(',')) return 'exactly one DPoP header is required';
  try {
    const header = jose.decodeProtectedHeader(proof);
    if (!header.jwk || header.jwk.d || header.jwk.kty !== 'EC') return 'the proof must embed a public EC jwk';
    if ((await jose.calculateJwkThumbprint(header.jwk, 'sha256')) !== jkt) return 'the proof key is not the key the token is bound to (cnf.jkt)';
    const { payload } = await jose.jwtVerify(proof, jose.EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGS, requiredClaims: ['iat', 'jti', 'htm', 'htu'] });
    if (payload.htm !== req.method || payload.htu.split(/[?#]/)[0] !== url) return "the proof's htm/htu do not match this request";
    if (Math.abs(Date.now() / 1000 - payload.iat) > 60) return "the proof's iat is outside the accepted window";
    if (payload.ath !== b64url(createHash('sha256').update(token).digest())) return "the proof's ath does not match the access token";
    const now = Date.now();
    if ((proofsSeen.get(payload.jti) ?? 0) > now) return 'the proof was replayed (jti)';
    if (proofsSeen.size > 10_000) for (const [k, v] of proofsSeen) if (v <= now) proofsSeen.delete(k);
    proofsSeen.set(payload.jti, now + 120_000);
  } catch (e) {
    return `the DPoP proof is invalid (${e.message})`;
  }
  return null;
}

async function authorize(req) {
  const [scheme = '', token = ''] = (req.headers.authorization ?? '').split(' ', 2);
  const lower = scheme.toLowerCase();
  if (!['bearer', 'dpop'].includes(lower) || !token) return [401, { error: 'invalid_token', error_description: 'send Authorization: Bearer|DPoP <token>' }];
  let claims;
  try {
    ({ payload: claims } = await jose.jwtVerify(token, jwks, { issuer, audience: opt.audience, typ: 'at+jwt', algorithms: ['ES256'], requiredClaims: ['exp', 'iat', 'nbf', 'jti'], clockTolerance: 5 }));
  } catch (e) {
    return [401, { error: 'invalid_token', error_description: e.message }];
  }
  if (isRevoked(claims)) return [401, { error: 'invalid_token', error_description: 'the token was revoked' }];
  const jkt = claims.cnf?.jkt;
  if (jkt || lower === 'dpop') {
    const url = `http://${req.headers.host}${req.url.split('?')[0]}`;
    const problem = await checkDpop(req, token, jkt, lower, url);
    if (problem) return [401, { error: jkt ? 'invalid_dpop_proof' : 'invalid_token', error_description: problem }];
  }
  if (!(claims.scope ?? '').split(' ').includes(opt.scope)) return [403, { error: 'insufficient_scope', error_description: `requires scope ${opt.scope}` }];
  return [200, { ok: true, agent: claims.client_id, lease_id: claims.lease_id }];
}

function reply(res, status, body) {
  const headers = { 'content-type': 'application/json' };
  if (status === 401 && !body.err) headers['www-authenticate'] = 'Bearer realm="node-validator", DPoP algs="ES256"';
  res.writeHead(status, headers).end(JSON.stringify(body));
}

let stream;
const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  const done = (p) => p.catch((e) => { if (!res.headersSent) reply(res, 500, { error: 'server_error', error_description: e.message }); });
  if (req.method === 'POST' && path === '/ssf/events') return done(receiveSet(req, res, stream));
  if (req.method === 'GET' && path === '/healthz') return reply(res, 200, { stream_id: stream?.stream_id, applied });
  if (req.method === 'GET' && path === '/resource') return done(authorize(req).then(([status, body]) => reply(res, status, body)));
  reply(res, 404, { error: 'not_found' });
});
await new Promise((resolve) => server.listen(Number(opt.port), '127.0.0.1', resolve));
const port = server.address().port;

// Create the push stream, or re-point the remembered one at this process (its port may have changed).
const delivery = { method: PUSH, endpoint_url: `http://127.0.0.1:${port}/ssf/events`, authorization_header: `Bearer ${state.pushSecret}` };
if (state.streamId) {
  try {
    stream = await brokerJson('PATCH', meta.configuration_endpoint, { stream_id: state.streamId, delivery });
  } catch (e) {
    if (e.status !== 404) throw e;
  }
}
stream ??= await brokerJson('POST', meta.configuration_endpoint, { delivery, events_requested: [SESSION_REVOKED], description: 'node-validator' });
state.streamId = stream.stream_id;
if (opt['state-file']) writeFileSync(opt['state-file'], JSON.stringify(state), { mode: 0o600 });
console.log(`node-validator: listening on http://127.0.0.1:${port}/resource (stream ${stream.stream_id})`);
