"""The CredBroker gRPC interop matrix on Debian's python3-grpcio (a client we did not write).

Runs every case against tests/CredBroker.Testing/Grpc/InteropServer.cs, whose addresses come from
the environment (INTEROP_H2C, INTEROP_TLS, INTEROP_MTLS, INTEROP_CERTS, INTEROP_PROTO_DIR), and
prints one JSON object per line: {"case": name, "ok": bool, "detail": what was seen}. It always
exits 0: tests/CredBroker.Interop.Tests/InteropMatrixTests.cs judges the lines.

Message classes are generated with the `protoc` binary into a temp dir (Debian ships no
grpc_tools) and the calls are plain channel.unary_unary / unary_stream / stream_stream.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import grpc
from google.protobuf import descriptor_pb2

CASE_TIMEOUT = 15.0  # seconds; no case needs more than ~4
SCRIPT_BUDGET = 55.0  # seconds; the NUnit side kills the process at 90

H2C = os.environ["INTEROP_H2C"]
TLS = os.environ["INTEROP_TLS"]
MTLS = os.environ["INTEROP_MTLS"]
CERTS = os.environ["INTEROP_CERTS"]
INTEROP_PROTOS = os.path.abspath(os.environ["INTEROP_PROTO_DIR"])


def _repo_protos():
    # INTEROP_PROTO_DIR is <root>/tests/interop/protos; fall back to this script's location.
    for root in (os.path.join(INTEROP_PROTOS, "..", "..", ".."),
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")):
        candidate = os.path.normpath(os.path.join(root, "protos"))
        if os.path.isfile(os.path.join(candidate, "google", "rpc", "status.proto")):
            return candidate
    raise SystemExit("the repository's protos/ directory was not found from INTEROP_PROTO_DIR=" + INTEROP_PROTOS)


REPO_PROTOS = _repo_protos()
_GEN = tempfile.mkdtemp(prefix="credbroker-matrix-pb-")
subprocess.run(["protoc", f"-I{INTEROP_PROTOS}", f"--python_out={_GEN}", "interop.proto"], check=True)
subprocess.run(["protoc", f"-I{REPO_PROTOS}", f"--python_out={_GEN}", "google/rpc/status.proto",
                "grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto",
                "grpc/reflection/v1alpha/reflection.proto"], check=True)


def _load(name, relative):
    # By path: `grpc` is grpcio's package and `google` is python3-protobuf's, so the generated
    # grpc/... and google/rpc/... modules cannot be imported by their package names.
    spec = importlib.util.spec_from_file_location(name, os.path.join(_GEN, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


interop_pb2 = _load("interop_pb2", "interop_pb2.py")
status_pb2 = _load("status_pb2", "google/rpc/status_pb2.py")
health_pb2 = _load("health_pb2", "grpc/health/v1/health_pb2.py")
reflection_v1_pb2 = _load("reflection_v1_pb2", "grpc/reflection/v1/reflection_pb2.py")
reflection_v1alpha_pb2 = _load("reflection_v1alpha_pb2", "grpc/reflection/v1alpha/reflection_pb2.py")
shutil.rmtree(_GEN, ignore_errors=True)

SERVICE = "credbroker.testing.v1.Interop"


def _read(name, mode="rb"):
    with open(os.path.join(CERTS, name), mode) as f:
        return f.read()


def _channel(kind="h2c", cert=None):
    if kind == "h2c":
        return grpc.insecure_channel(H2C)
    key, chain = (_read(cert + ".key"), _read(cert + ".pem")) if cert else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates=_read("ca.pem"), private_key=key, certificate_chain=chain)
    return grpc.secure_channel(TLS if kind == "tls" else MTLS, credentials)


def _unary(channel, path, req_type, resp_type):
    return channel.unary_unary(path, request_serializer=req_type.SerializeToString, response_deserializer=resp_type.FromString)


def _stream(channel, path, req_type, resp_type):
    return channel.unary_stream(path, request_serializer=req_type.SerializeToString, response_deserializer=resp_type.FromString)


def echo(channel):
    return _unary(channel, f"/{SERVICE}/Echo", interop_pb2.EchoRequest, interop_pb2.EchoResponse)


def count(channel):
    return _stream(channel, f"/{SERVICE}/Count", interop_pb2.CountRequest, interop_pb2.CountResponse)


def stats(channel):
    return _unary(channel, f"/{SERVICE}/Stats", interop_pb2.StatsRequest, interop_pb2.StatsResponse)


class Fail(Exception):
    pass


def expect(condition, detail):
    if not condition:
        raise Fail(detail)


def describe_error(e):
    return f"{e.code().name} {e.details()!r}" if isinstance(e, grpc.RpcError) and hasattr(e, "code") else repr(e)


def expect_status(call_fn, code, message=None):
    """Runs call_fn, which must fail with `code` (and `message`); returns the RpcError."""
    try:
        result = call_fn()
    except grpc.RpcError as e:
        expect(e.code() == code, f"expected {code.name}, got {describe_error(e)}")
        expect(message is None or e.details() == message, f"expected message {message!r}, got {describe_error(e)}")
        return e
    raise Fail(f"expected {code.name}, the call succeeded with {str(result)[:200]!r}")


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def unary_ok(ch):
    response = echo(ch)(interop_pb2.EchoRequest(message="hello interop"), timeout=5)
    expect(response.message == "hello interop", f"message {response.message!r}")
    return f"message {response.message!r}"


@case
def unary_error_with_details(ch):
    e = expect_status(lambda: echo(ch)(interop_pb2.EchoRequest(message="m", fail_code=7, fail_message="denied by test"), timeout=5),
                      grpc.StatusCode.PERMISSION_DENIED, "denied by test")
    trailers = e.trailing_metadata() or ()
    raw = [v for k, v in trailers if k == "grpc-status-details-bin"]
    expect(len(raw) == 1, f"grpc-status-details-bin trailer not found exactly once in {[k for k, _ in trailers]}")
    status = status_pb2.Status.FromString(raw[0])
    expect(status.code == 7 and status.message == "denied by test", f"Status code={status.code} message={status.message!r}")
    expect(len(status.details) >= 1, "google.rpc.Status has no details")
    any0 = status.details[0]
    expect(any0.type_url.endswith("/google.rpc.ErrorInfo"), f"details[0] type_url {any0.type_url!r}")
    info = status_pb2.ErrorInfo.FromString(any0.value)
    expect(info.reason == "TEST_FAILURE", f"ErrorInfo.reason {info.reason!r}")
    expect(info.domain == "interop.test", f"ErrorInfo.domain {info.domain!r}")
    expect(dict(info.metadata) == {"echo": "m"}, f"ErrorInfo.metadata {dict(info.metadata)!r}")
    return f"PERMISSION_DENIED 'denied by test', ErrorInfo reason={info.reason} domain={info.domain}"


@case
def metadata_roundtrip(ch):
    data = bytes(range(256))
    response, call = echo(ch).with_call(interop_pb2.EchoRequest(message="md"), timeout=5,
                                        metadata=[("x-echo-text", "hello"), ("x-echo-data-bin", data)])
    expect(response.message == "md", f"message {response.message!r}")
    headers, trailers = list(call.initial_metadata() or ()), list(call.trailing_metadata() or ())

    def values(md, key):
        return [v for k, v in md if k == key]

    expect(values(headers, "x-echo-text") == ["hello"], f"header x-echo-text {values(headers, 'x-echo-text')!r} in {headers!r}")
    expect(values(headers, "x-echo-data-bin") == [data], f"header x-echo-data-bin {values(headers, 'x-echo-data-bin')!r}")
    expect(values(trailers, "x-trailer-text") == ["hello"], f"trailer x-trailer-text {values(trailers, 'x-trailer-text')!r} in {trailers!r}")
    expect(values(trailers, "x-trailer-data-bin") == [data], f"trailer x-trailer-data-bin {values(trailers, 'x-trailer-data-bin')!r}")
    return "headers and trailers echoed (text and 256 binary bytes)"


@case
def server_streaming(ch):
    call = count(ch)(interop_pb2.CountRequest(count=25), timeout=10)
    indexes = [m.index for m in call]
    expect(indexes == list(range(25)), f"indexes {indexes}")
    expect(call.code() == grpc.StatusCode.OK, f"status {call.code().name}")
    return "25 messages 0..24, OK"


@case
def streaming_error_midway(ch):
    call = count(ch)(interop_pb2.CountRequest(count=10, fail_after=4), timeout=10)
    indexes = []
    try:
        for m in call:
            indexes.append(m.index)
    except grpc.RpcError as e:
        expect(indexes == [0, 1, 2, 3], f"messages before the error {indexes}")
        expect(e.code() == grpc.StatusCode.ABORTED and e.details() == "failed after 4 messages",
               f"expected ABORTED 'failed after 4 messages', got {describe_error(e)}")
        return f"{len(indexes)} messages then ABORTED {e.details()!r}"
    raise Fail(f"the stream ended with {call.code().name} after {indexes}")


@case
def streaming_client_cancel(ch):
    before = stats(ch)(interop_pb2.StatsRequest(), timeout=5).cancelled_streams
    call = count(ch)(interop_pb2.CountRequest(count=1000, delay_ms=50), timeout=30)
    got = [next(call).index for _ in range(3)]
    expect(got == [0, 1, 2], f"first messages {got}")
    call.cancel()
    cancelled_at = time.monotonic()
    seen = before
    while time.monotonic() - cancelled_at < 5:
        seen = stats(ch)(interop_pb2.StatsRequest(), timeout=5).cancelled_streams
        if seen > before:
            return f"cancelled_streams {before} -> {seen} {time.monotonic() - cancelled_at:.2f} s after cancel"
        time.sleep(0.05)
    raise Fail(f"cancelled_streams stayed {seen} (was {before}) for 5 s after cancelling the stream (sent with a 30 s grpc-timeout)")


@case
def deadline_client(ch):
    started = time.monotonic()
    expect_status(lambda: echo(ch)(interop_pb2.EchoRequest(message="slow", delay_ms=2000), timeout=0.3), grpc.StatusCode.DEADLINE_EXCEEDED)
    elapsed = time.monotonic() - started
    expect(elapsed < 1.0, f"DEADLINE_EXCEEDED only after {elapsed:.2f} s")
    return f"DEADLINE_EXCEEDED after {elapsed:.2f} s"


@case
def deadline_server(ch):
    # No client timeout (no grpc-timeout header): only the server's 3 s cap can end the call. The
    # future is waited on with a local bound, so a server that never answers cannot hang the script.
    started = time.monotonic()
    future = echo(ch).future(interop_pb2.EchoRequest(message="slower", delay_ms=6000))
    try:
        future.result(timeout=7)
    except grpc.FutureTimeoutError:
        future.cancel()
        raise Fail("no answer within 7 s: the server did not apply its 3 s unary deadline")
    except grpc.RpcError as e:
        elapsed = time.monotonic() - started
        expect(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"expected DEADLINE_EXCEEDED, got {describe_error(e)} after {elapsed:.2f} s")
        expect(elapsed < 5.5, f"DEADLINE_EXCEEDED only after {elapsed:.2f} s")
        return f"DEADLINE_EXCEEDED {e.details()!r} after {elapsed:.2f} s"
    raise Fail(f"the call succeeded after {time.monotonic() - started:.2f} s")


COMPRESSIBLE = b"credbroker " * 400


@case
def gzip_request(ch):
    response = echo(ch)(interop_pb2.EchoRequest(message="gz", payload=COMPRESSIBLE), timeout=5, compression=grpc.Compression.Gzip)
    expect(response.request_compressed, "request_compressed is false")
    expect(response.payload_size == len(COMPRESSIBLE), f"payload_size {response.payload_size}")
    return f"request_compressed true, payload_size {response.payload_size}"


@case
def gzip_response(ch):
    # grpcio does not expose whether a response message was compressed: the round trip of a
    # large, compressible response on a gzip call is what is checked.
    response = echo(ch)(interop_pb2.EchoRequest(message="gz", payload=COMPRESSIBLE, response_size=8192), timeout=5,
                        compression=grpc.Compression.Gzip)
    expect(response.message == "gz" and response.padding == bytes(8192), f"message {response.message!r}, padding {len(response.padding)} bytes")
    return "8192-byte padded response received intact (compression of responses not observable in grpcio)"


@case
def oversized_request(ch):
    e = expect_status(lambda: echo(ch)(interop_pb2.EchoRequest(message="big", payload=bytes(100 * 1024)), timeout=5),
                      grpc.StatusCode.RESOURCE_EXHAUSTED)
    return f"RESOURCE_EXHAUSTED {e.details()!r}"


def _raw(ch, path):
    return ch.unary_unary(path, request_serializer=lambda b: b, response_deserializer=lambda b: b)(b"", timeout=5)


@case
def unknown_method(ch):
    e = expect_status(lambda: _raw(ch, f"/{SERVICE}/Nope"), grpc.StatusCode.UNIMPLEMENTED)
    return f"UNIMPLEMENTED {e.details()!r}"


@case
def unknown_service(ch):
    e = expect_status(lambda: _raw(ch, "/no.such.Service/X"), grpc.StatusCode.UNIMPLEMENTED)
    return f"UNIMPLEMENTED {e.details()!r}"


@case
def health_check(ch):
    check = _unary(ch, "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse)
    serving = health_pb2.HealthCheckResponse.SERVING
    for service in ("", SERVICE):
        status = check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        expect(status == serving, f"service {service!r}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}")
    expect_status(lambda: check(health_pb2.HealthCheckRequest(service="nope"), timeout=5), grpc.StatusCode.NOT_FOUND)
    return "'' SERVING, Interop SERVING, 'nope' NOT_FOUND"


@case
def health_watch(ch):
    watch = _stream(ch, "/grpc.health.v1.Health/Watch", health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse)
    call = watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    first = next(call)
    expect(first.status == health_pb2.HealthCheckResponse.SERVING,
           f"first status {health_pb2.HealthCheckResponse.ServingStatus.Name(first.status)}")
    call.cancel()
    expect(call.code() == grpc.StatusCode.CANCELLED, f"after cancel: {call.code().name}")
    return "first message SERVING, then cancelled"


def _reflect(ch, pb2, version, request):
    info = ch.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                            request_serializer=pb2.ServerReflectionRequest.SerializeToString,
                            response_deserializer=pb2.ServerReflectionResponse.FromString)
    responses = list(info(iter([request]), timeout=5))
    expect(len(responses) == 1, f"{len(responses)} responses to one request")
    return responses[0]


@case
def reflection_v1_list(ch):
    pb2 = reflection_v1_pb2
    response = _reflect(ch, pb2, "v1", pb2.ServerReflectionRequest(list_services="*"))
    kind = response.WhichOneof("message_response")
    expect(kind == "list_services_response", f"response is {kind}: {response}")
    names = [s.name for s in response.list_services_response.service]
    for wanted in (SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"):
        expect(wanted in names, f"{wanted} not in {names}")
    return f"services {names}"


@case
def reflection_v1alpha_describe(ch):
    pb2 = reflection_v1alpha_pb2
    response = _reflect(ch, pb2, "v1alpha", pb2.ServerReflectionRequest(file_containing_symbol=SERVICE))
    kind = response.WhichOneof("message_response")
    expect(kind == "file_descriptor_response", f"response is {kind}: {response}")
    files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in response.file_descriptor_response.file_descriptor_proto]
    for f in files:
        for service in f.service:
            if f.package == "credbroker.testing.v1" and service.name == "Interop":
                methods = [m.name for m in service.method]
                expect({"Echo", "Count", "Stats"} <= set(methods), f"{f.name}: Interop methods {methods}")
                return f"{f.name} defines Interop with methods {methods}"
    raise Fail(f"no file defines credbroker.testing.v1.Interop: {[(f.name, f.package, [s.name for s in f.service]) for f in files]}")


@case
def tls_ok(_):
    with _channel("tls") as tls:
        return "over TLS: " + unary_ok(tls)


@case
def mtls_ok(_):
    with _channel("mtls", cert="client") as mtls:
        return "over mTLS: " + unary_ok(mtls)


@case
def mtls_no_client_cert(_):
    with _channel("mtls") as mtls:
        e = expect_status(lambda: echo(mtls)(interop_pb2.EchoRequest(message="x"), timeout=5), grpc.StatusCode.UNAVAILABLE)
        return f"UNAVAILABLE {e.details()!r}"


@case
def mtls_rogue_cert(_):
    with _channel("mtls", cert="rogue") as mtls:
        try:
            response = echo(mtls)(interop_pb2.EchoRequest(message="x"), timeout=5)
        except grpc.RpcError as e:
            return f"refused: {describe_error(e)}"
        raise Fail(f"a client certificate from another CA was accepted: {response.message!r}")


def run_case(fn, channel):
    outcome = {}

    def target():
        try:
            outcome["detail"] = fn(channel)
            outcome["ok"] = True
        except Fail as e:
            outcome.update(ok=False, detail=str(e))
        except grpc.RpcError as e:
            outcome.update(ok=False, detail="unexpected " + describe_error(e))
        except Exception as e:  # noqa: BLE001 - every failure is reported, never raised
            outcome.update(ok=False, detail=f"{type(e).__name__}: {e}")

    worker = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(CASE_TIMEOUT)
    if worker.is_alive():
        outcome.update(ok=False, detail=f"did not finish in {CASE_TIMEOUT:.0f} s")
    return {"case": fn.__name__, "ok": outcome["ok"], "detail": f"{outcome['detail']} [{time.monotonic() - started:.2f} s]"}


def main():
    started = time.monotonic()
    channel = _channel("h2c")
    for fn in CASES:
        if time.monotonic() - started > SCRIPT_BUDGET:
            result = {"case": fn.__name__, "ok": False, "detail": f"not run: the script's {SCRIPT_BUDGET:.0f} s budget is spent"}
        else:
            result = run_case(fn, channel)
        print(json.dumps(result), flush=True)
    # A stuck worker thread must not keep the process alive.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
