// The CredBroker gRPC interop matrix on npm's @grpc/grpc-js (a client we did not write).
//
// Runs every case against tests/CredBroker.Testing/Grpc/InteropServer.cs, whose addresses come
// from the environment (INTEROP_H2C, INTEROP_TLS, INTEROP_MTLS, INTEROP_CERTS, INTEROP_PROTO_DIR),
// and prints one JSON object per line: {"case": name, "ok": bool, "detail": what was seen}. It
// always exits 0: tests/CredBroker.Interop.Tests/InteropMatrixTests.cs judges the lines.
//
// interop.proto, health and reflection are loaded with @grpc/proto-loader (keepCase); the
// google.rpc.Status trailer and reflection's FileDescriptorProtos are decoded with protobufjs.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const descriptor = require('protobufjs/ext/descriptor');

const CASE_TIMEOUT_MS = 15000; // no case needs more than ~4 s
const SCRIPT_BUDGET_MS = 55000; // the NUnit side kills the process at 90 s

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const H2C = env('INTEROP_H2C');
const TLS = env('INTEROP_TLS');
const MTLS = env('INTEROP_MTLS');
const CERTS = env('INTEROP_CERTS');
const INTEROP_PROTOS = path.resolve(env('INTEROP_PROTO_DIR'));

// INTEROP_PROTO_DIR is <root>/tests/interop/protos; fall back to this script's location.
const REPO_PROTOS = [path.join(INTEROP_PROTOS, '..', '..', '..', 'protos'), path.join(__dirname, '..', '..', '..', 'protos')]
  .map((p) => path.normalize(p))
  .find((p) => fs.existsSync(path.join(p, 'google', 'rpc', 'status.proto')));
if (!REPO_PROTOS) {
  throw new Error(`the repository's protos/ directory was not found from INTEROP_PROTO_DIR=${INTEROP_PROTOS}`);
}

const LOADER_OPTIONS = { keepCase: true, enums: String, defaults: true, oneofs: true };
const interopDef = protoLoader.loadSync('interop.proto', { ...LOADER_OPTIONS, includeDirs: [INTEROP_PROTOS] });
const grpcDef = protoLoader.loadSync(
  ['grpc/health/v1/health.proto', 'grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'],
  { ...LOADER_OPTIONS, includeDirs: [REPO_PROTOS] });
const statusRoot = protobuf.loadSync(path.join(REPO_PROTOS, 'google', 'rpc', 'status.proto'));
const RpcStatus = statusRoot.lookupType('google.rpc.Status');
const ErrorInfo = statusRoot.lookupType('google.rpc.ErrorInfo');

const SERVICE = 'credbroker.testing.v1.Interop';
const Echo = interopDef[SERVICE].Echo;
const Count = interopDef[SERVICE].Count;
const Stats = interopDef[SERVICE].Stats;
const HealthCheck = grpcDef['grpc.health.v1.Health'].Check;
const HealthWatch = grpcDef['grpc.health.v1.Health'].Watch;
const ReflectV1 = grpcDef['grpc.reflection.v1.ServerReflection'].ServerReflectionInfo;
const ReflectV1Alpha = grpcDef['grpc.reflection.v1alpha.ServerReflection'].ServerReflectionInfo;
const RAW = { requestSerialize: (b) => b, responseDeserialize: (b) => b };

const read = (name) => fs.readFileSync(path.join(CERTS, name));
const clients = [];

function client(kind = 'h2c', { cert, options } = {}) {
  let c;
  if (kind === 'h2c') {
    c = new grpc.Client(H2C, grpc.credentials.createInsecure(), options);
  } else {
    const creds = cert
      ? grpc.credentials.createSsl(read('ca.pem'), read(`${cert}.key`), read(`${cert}.pem`))
      : grpc.credentials.createSsl(read('ca.pem'));
    c = new grpc.Client(kind === 'tls' ? TLS : MTLS, creds, options);
  }
  clients.push(c);
  return c;
}

class Fail extends Error {}

function expect(condition, detail) {
  if (!condition) {
    throw new Fail(detail);
  }
}

const codeName = (code) => Object.keys(grpc.status).find((k) => grpc.status[k] === code) || String(code);
const describe = (r) => `${codeName(r.status.code)} ${JSON.stringify(r.status.details)}`;
const deadline = (ms) => new Date(Date.now() + ms);

/** A unary call; resolves {error, response, headers, status (with trailers in status.metadata)}. */
function unary(c, method, request, { metadata = new grpc.Metadata(), timeoutMs = 5000 } = {}) {
  let call;
  const promise = new Promise((resolve) => {
    const out = {};
    let pending = 2;
    const done = () => --pending === 0 && resolve(out);
    const options = timeoutMs === null ? {} : { deadline: deadline(timeoutMs) };
    call = c.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata, options,
      (error, response) => { Object.assign(out, { error, response }); done(); });
    call.on('metadata', (md) => { out.headers = md; });
    call.on('status', (status) => { out.status = status; done(); });
  });
  promise.call = call;
  return promise;
}

/** Expects a unary result to have failed with `code` (and `message`). */
function expectStatus(result, code, message) {
  expect(result.status.code !== grpc.status.OK, `expected ${codeName(code)}, the call succeeded with ${JSON.stringify(result.response)}`);
  expect(result.status.code === code, `expected ${codeName(code)}, got ${describe(result)}`);
  expect(message === undefined || result.status.details === message, `expected message ${JSON.stringify(message)}, got ${describe(result)}`);
}

/** A server-streaming call; onData(message, call) may cancel. Resolves {messages, status}. */
function serverStream(c, method, request, { timeoutMs = 10000, onData } = {}) {
  return new Promise((resolve) => {
    const messages = [];
    let status;
    let ended = false;
    const finish = () => status && (ended || status.code !== grpc.status.OK) && setImmediate(() => resolve({ messages, status, call }));
    const call = c.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, request,
      new grpc.Metadata(), timeoutMs === null ? {} : { deadline: deadline(timeoutMs) });
    call.on('data', (m) => { messages.push(m); if (onData) { onData(m, call, messages); } });
    call.on('error', () => {}); // the status event carries it
    call.on('end', () => { ended = true; finish(); });
    call.on('status', (s) => { status = s; finish(); });
  });
}

function bidi(c, method, requests, timeoutMs = 5000) {
  return new Promise((resolve) => {
    const messages = [];
    let status;
    let ended = false;
    const finish = () => status && (ended || status.code !== grpc.status.OK) && setImmediate(() => resolve({ messages, status }));
    const call = c.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize,
      new grpc.Metadata(), { deadline: deadline(timeoutMs) });
    call.on('data', (m) => messages.push(m));
    call.on('error', () => {});
    call.on('end', () => { ended = true; finish(); });
    call.on('status', (s) => { status = s; finish(); });
    for (const r of requests) {
      call.write(r);
    }
    call.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const h2c = client('h2c');
const cases = {};

cases.unary_ok = async (c = h2c) => {
  const r = await unary(c, Echo, { message: 'hello interop' });
  expect(!r.error, `unexpected ${describe(r)}`);
  expect(r.response.message === 'hello interop', `message ${JSON.stringify(r.response.message)}`);
  return `message ${JSON.stringify(r.response.message)}`;
};

cases.unary_error_with_details = async () => {
  const r = await unary(h2c, Echo, { message: 'm', fail_code: 7, fail_message: 'denied by test' });
  expectStatus(r, grpc.status.PERMISSION_DENIED, 'denied by test');
  const raw = r.status.metadata.get('grpc-status-details-bin');
  expect(raw.length === 1, `grpc-status-details-bin trailer not found exactly once in ${JSON.stringify(Object.keys(r.status.metadata.getMap()))}`);
  const status = RpcStatus.decode(raw[0]);
  expect(status.code === 7 && status.message === 'denied by test', `Status code=${status.code} message=${JSON.stringify(status.message)}`);
  expect(status.details.length >= 1, 'google.rpc.Status has no details');
  const any0 = status.details[0];
  expect(any0.type_url.endsWith('/google.rpc.ErrorInfo'), `details[0] type_url ${JSON.stringify(any0.type_url)}`);
  const info = ErrorInfo.decode(any0.value);
  expect(info.reason === 'TEST_FAILURE', `ErrorInfo.reason ${JSON.stringify(info.reason)}`);
  expect(info.domain === 'interop.test', `ErrorInfo.domain ${JSON.stringify(info.domain)}`);
  expect(JSON.stringify(info.metadata) === JSON.stringify({ echo: 'm' }), `ErrorInfo.metadata ${JSON.stringify(info.metadata)}`);
  return `PERMISSION_DENIED 'denied by test', ErrorInfo reason=${info.reason} domain=${info.domain}`;
};

cases.metadata_roundtrip = async () => {
  const data = Buffer.from([...Array(256).keys()]);
  const md = new grpc.Metadata();
  md.add('x-echo-text', 'hello');
  md.add('x-echo-data-bin', data);
  const r = await unary(h2c, Echo, { message: 'md' }, { metadata: md });
  expect(!r.error, `unexpected ${describe(r)}`);
  expect(r.headers, 'no initial metadata was seen');
  const trailers = r.status.metadata;
  const text = (m, k) => JSON.stringify(m.get(k));
  const same = (m, k) => m.get(k).length === 1 && Buffer.isBuffer(m.get(k)[0]) && m.get(k)[0].equals(data);
  expect(text(r.headers, 'x-echo-text') === '["hello"]', `header x-echo-text ${text(r.headers, 'x-echo-text')} in ${JSON.stringify(r.headers.toJSON())}`);
  expect(same(r.headers, 'x-echo-data-bin'), `header x-echo-data-bin ${text(r.headers, 'x-echo-data-bin')}`);
  expect(text(trailers, 'x-trailer-text') === '["hello"]', `trailer x-trailer-text ${text(trailers, 'x-trailer-text')} in ${JSON.stringify(trailers.toJSON())}`);
  expect(same(trailers, 'x-trailer-data-bin'), `trailer x-trailer-data-bin ${text(trailers, 'x-trailer-data-bin')}`);
  return 'headers and trailers echoed (text and 256 binary bytes)';
};

cases.server_streaming = async () => {
  const r = await serverStream(h2c, Count, { count: 25 });
  const indexes = r.messages.map((m) => m.index);
  expect(JSON.stringify(indexes) === JSON.stringify([...Array(25).keys()]), `indexes ${JSON.stringify(indexes)} status ${codeName(r.status.code)}`);
  expect(r.status.code === grpc.status.OK, `status ${codeName(r.status.code)} ${JSON.stringify(r.status.details)}`);
  return '25 messages 0..24, OK';
};

cases.streaming_error_midway = async () => {
  const r = await serverStream(h2c, Count, { count: 10, fail_after: 4 });
  const indexes = r.messages.map((m) => m.index);
  expect(JSON.stringify(indexes) === '[0,1,2,3]', `messages before the end ${JSON.stringify(indexes)}, then ${describe(r)}`);
  expect(r.status.code === grpc.status.ABORTED && r.status.details === 'failed after 4 messages',
    `expected ABORTED 'failed after 4 messages', got ${describe(r)}`);
  return `4 messages then ABORTED ${JSON.stringify(r.status.details)}`;
};

const cancelledStreams = async () => {
  const r = await unary(h2c, Stats, {});
  expect(!r.error, `Stats: ${describe(r)}`);
  return r.response.cancelled_streams;
};

cases.streaming_client_cancel = async () => {
  const before = await cancelledStreams();
  const r = await serverStream(h2c, Count, { count: 1000, delay_ms: 50 }, {
    timeoutMs: 30000,
    onData: (m, call, messages) => { if (messages.length === 3) { call.cancel(); } },
  });
  const indexes = r.messages.map((m) => m.index);
  expect(JSON.stringify(indexes.slice(0, 3)) === '[0,1,2]' && indexes.length <= 4, `messages ${JSON.stringify(indexes)}`);
  expect(r.status.code === grpc.status.CANCELLED, `after cancel: ${describe(r)}`);
  const cancelledAt = Date.now();
  let seen = before;
  while (Date.now() - cancelledAt < 5000) {
    seen = await cancelledStreams();
    if (seen > before) {
      return `cancelled_streams ${before} -> ${seen} ${((Date.now() - cancelledAt) / 1000).toFixed(2)} s after cancel`;
    }
    await sleep(50);
  }
  throw new Fail(`cancelled_streams stayed ${seen} (was ${before}) for 5 s after cancelling the stream (sent with a 30 s grpc-timeout)`);
};

cases.deadline_client = async () => {
  const started = Date.now();
  const r = await unary(h2c, Echo, { message: 'slow', delay_ms: 2000 }, { timeoutMs: 300 });
  const elapsed = (Date.now() - started) / 1000;
  expectStatus(r, grpc.status.DEADLINE_EXCEEDED);
  expect(elapsed < 1.0, `DEADLINE_EXCEEDED only after ${elapsed.toFixed(2)} s`);
  return `DEADLINE_EXCEEDED after ${elapsed.toFixed(2)} s`;
};

cases.deadline_server = async () => {
  // No client deadline (no grpc-timeout header): only the server's 3 s cap can end the call. A
  // local timer cancels it at 7 s so a server that never answers cannot hang the script.
  const started = Date.now();
  const pending = unary(h2c, Echo, { message: 'slower', delay_ms: 6000 }, { timeoutMs: null });
  const call = await Promise.race([pending, sleep(7000).then(() => null)]);
  const elapsed = (Date.now() - started) / 1000;
  if (call === null) {
    pending.call.cancel();
    throw new Fail('no answer within 7 s: the server did not apply its 3 s unary deadline');
  }
  expectStatus(call, grpc.status.DEADLINE_EXCEEDED);
  expect(elapsed < 5.5, `DEADLINE_EXCEEDED only after ${elapsed.toFixed(2)} s`);
  return `DEADLINE_EXCEEDED ${JSON.stringify(call.status.details)} after ${elapsed.toFixed(2)} s`;
};

const COMPRESSIBLE = Buffer.from('credbroker '.repeat(400));
const gzipClient = client('h2c', { options: { 'grpc.default_compression_algorithm': 2 } }); // 2 = gzip

cases.gzip_request = async () => {
  const r = await unary(gzipClient, Echo, { message: 'gz', payload: COMPRESSIBLE });
  expect(!r.error, `unexpected ${describe(r)}`);
  expect(r.response.request_compressed === true, `request_compressed ${r.response.request_compressed}`);
  expect(r.response.payload_size === COMPRESSIBLE.length, `payload_size ${r.response.payload_size}`);
  return `request_compressed true, payload_size ${r.response.payload_size}`;
};

cases.gzip_response = async () => {
  // grpc-js strips grpc-encoding from the metadata it surfaces, so whether the response was
  // compressed is not observable: the round trip of a large, compressible response is checked.
  const r = await unary(gzipClient, Echo, { message: 'gz', payload: COMPRESSIBLE, response_size: 8192 });
  expect(!r.error, `unexpected ${describe(r)}`);
  expect(r.response.message === 'gz' && r.response.padding.equals(Buffer.alloc(8192)),
    `message ${JSON.stringify(r.response.message)}, padding ${r.response.padding.length} bytes`);
  return '8192-byte padded response received intact (compression of responses not observable in grpc-js)';
};

cases.oversized_request = async () => {
  const r = await unary(h2c, Echo, { message: 'big', payload: Buffer.alloc(100 * 1024) });
  expectStatus(r, grpc.status.RESOURCE_EXHAUSTED);
  return describe(r);
};

cases.unknown_method = async () => {
  const r = await unary(h2c, { path: `/${SERVICE}/Nope`, ...RAW }, Buffer.alloc(0));
  expectStatus(r, grpc.status.UNIMPLEMENTED);
  return describe(r);
};

cases.unknown_service = async () => {
  const r = await unary(h2c, { path: '/no.such.Service/X', ...RAW }, Buffer.alloc(0));
  expectStatus(r, grpc.status.UNIMPLEMENTED);
  return describe(r);
};

cases.health_check = async () => {
  for (const service of ['', SERVICE]) {
    const r = await unary(h2c, HealthCheck, { service });
    expect(!r.error, `service ${JSON.stringify(service)}: ${describe(r)}`);
    expect(r.response.status === 'SERVING', `service ${JSON.stringify(service)}: ${r.response.status}`);
  }
  expectStatus(await unary(h2c, HealthCheck, { service: 'nope' }), grpc.status.NOT_FOUND);
  return "'' SERVING, Interop SERVING, 'nope' NOT_FOUND";
};

cases.health_watch = async () => {
  const r = await serverStream(h2c, HealthWatch, { service: '' }, { onData: (m, call) => call.cancel() });
  expect(r.messages.length >= 1, `no message before ${describe(r)}`);
  expect(r.messages[0].status === 'SERVING', `first status ${r.messages[0].status}`);
  expect(r.status.code === grpc.status.CANCELLED, `after cancel: ${describe(r)}`);
  return 'first message SERVING, then cancelled';
};

async function reflect(method, request) {
  const r = await bidi(h2c, method, [request]);
  expect(r.status.code === grpc.status.OK, `status ${describe(r)}`);
  expect(r.messages.length === 1, `${r.messages.length} responses to one request`);
  return r.messages[0];
}

cases.reflection_v1_list = async () => {
  const response = await reflect(ReflectV1, { list_services: '*' });
  expect(response.message_response === 'list_services_response', `response is ${response.message_response}: ${JSON.stringify(response)}`);
  const names = response.list_services_response.service.map((s) => s.name);
  for (const wanted of [SERVICE, 'grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection']) {
    expect(names.includes(wanted), `${wanted} not in ${JSON.stringify(names)}`);
  }
  return `services ${JSON.stringify(names)}`;
};

cases.reflection_v1alpha_describe = async () => {
  const response = await reflect(ReflectV1Alpha, { file_containing_symbol: SERVICE });
  expect(response.message_response === 'file_descriptor_response', `response is ${response.message_response}: ${JSON.stringify(response)}`);
  const files = response.file_descriptor_response.file_descriptor_proto.map((b) => descriptor.FileDescriptorProto.decode(b));
  for (const f of files) {
    for (const service of f.service) {
      if (f.package === 'credbroker.testing.v1' && service.name === 'Interop') {
        const methods = service.method.map((m) => m.name);
        expect(['Echo', 'Count', 'Stats'].every((m) => methods.includes(m)), `${f.name}: Interop methods ${JSON.stringify(methods)}`);
        return `${f.name} defines Interop with methods ${JSON.stringify(methods)}`;
      }
    }
  }
  throw new Fail(`no file defines credbroker.testing.v1.Interop: ${JSON.stringify(files.map((f) => [f.name, f.package, f.service.map((s) => s.name)]))}`);
};

cases.tls_ok = async () => `over TLS: ${await cases.unary_ok(client('tls'))}`;

cases.mtls_ok = async () => `over mTLS: ${await cases.unary_ok(client('mtls', { cert: 'client' }))}`;

cases.mtls_no_client_cert = async () => {
  const r = await unary(client('mtls'), Echo, { message: 'x' });
  expectStatus(r, grpc.status.UNAVAILABLE);
  return describe(r);
};

cases.mtls_rogue_cert = async () => {
  const r = await unary(client('mtls', { cert: 'rogue' }), Echo, { message: 'x' });
  expect(r.status.code !== grpc.status.OK, `a client certificate from another CA was accepted: ${JSON.stringify(r.response)}`);
  return `refused: ${describe(r)}`;
};

async function runCase(name, fn) {
  const started = Date.now();
  let ok;
  let detail;
  let timer;
  try {
    detail = await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Fail(`did not finish in ${CASE_TIMEOUT_MS / 1000} s`)), CASE_TIMEOUT_MS); }),
    ]);
    ok = true;
  } catch (e) {
    ok = false;
    detail = e instanceof Fail ? e.message : `${e.name}: ${e.message}`;
  } finally {
    clearTimeout(timer);
  }
  return { case: name, ok, detail: `${detail} [${((Date.now() - started) / 1000).toFixed(2)} s]` };
}

async function main() {
  const started = Date.now();
  for (const [name, fn] of Object.entries(cases)) {
    const result = Date.now() - started > SCRIPT_BUDGET_MS
      ? { case: name, ok: false, detail: `not run: the script's ${SCRIPT_BUDGET_MS / 1000} s budget is spent` }
      : await runCase(name, () => fn());
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  for (const c of clients) {
    c.close();
  }
}

main().then(() => process.exit(0), (e) => { process.stderr.write(`${e.stack}\n`); process.exit(0); });
