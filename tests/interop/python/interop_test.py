#!/usr/bin/env python3
"""Interop checks with Debian's python3-grpcio and PyJWT (python3-jwt), a client we did not write.

Usage: interop_test.py <agent address> <http base url> <operator address>;
env CREDBROKER_DEV_SECRET and CREDBROKER_DEV_OPERATOR_SECRET.
Prints one JSON line per check; exits 0 only when every check passed.
"""
import json
import os
import sys
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "samples", "python-agent"))

import grpc  # noqa: E402
import jwt  # noqa: E402
from google.protobuf.duration_pb2 import Duration  # noqa: E402

from credbroker_client import CredBroker, broker_pb2, health_pb2, operator_pb2, validation_pb2  # noqa: E402

address, http_base, operator_address = sys.argv[1], sys.argv[2], sys.argv[3]
broker = CredBroker(address, os.environ["CREDBROKER_DEV_SECRET"])
operators = CredBroker(operator_address, os.environ["CREDBROKER_DEV_OPERATOR_SECRET"])
results = []


def check(name):
    def run(fn):
        try:
            fn()
            results.append({"name": name, "ok": True})
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            results.append({"name": name, "ok": False, "detail": f"{type(e).__name__}: {e}"})
        return fn
    return run


def expect_status(code, fn, contains=None):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, f"expected {code}, got {e.code()}: {e.details()}"
        if contains:
            assert contains in (e.details() or ""), f"details {e.details()!r} lack {contains!r}"
        return
    raise AssertionError(f"expected {code}, call succeeded")


def begin(task_id=None, scopes=("demo:read",), **kw):
    return broker.call("BeginTask", broker_pb2.BeginTaskRequest(
        task_id="py-" + uuid.uuid4().hex if task_id is None else task_id, purpose="interop", scopes=list(scopes),
        audience="demo-api", ttl=Duration(seconds=300)), **kw)


state = {}


@check("begin_task_returns_lease_and_token")
def _():
    r = begin()
    assert r.lease_id and r.access_token and list(r.granted_scopes) == ["demo:read"]
    assert r.token_expires_at.ToDatetime() <= r.lease_deadline.ToDatetime()
    state["begun"] = r


@check("token_verifies_with_pyjwt_against_jwks")
def _():
    r = state["begun"]
    jwks = json.load(urllib.request.urlopen(http_base + "/.well-known/jwks.json"))
    header = jwt.get_unverified_header(r.access_token)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256", header
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(r.access_token, jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(key)),
                        algorithms=["ES256"], audience="demo-api", issuer=http_base)
    for c in ("iss", "sub", "aud", "scope", "jti", "iat", "nbf", "exp", "lease_id", "task_id", "owner", "client_id"):
        assert c in claims, f"missing claim {c}"
    assert claims["act"]["sub"] == "dev-agent" and claims["owner"] == "dev@example.com"
    assert claims["exp"] <= r.lease_deadline.seconds and claims["lease_id"] == r.lease_id


@check("begin_task_is_idempotent")
def _():
    task = "py-idem-" + uuid.uuid4().hex
    assert begin(task).lease_id == begin(task).lease_id


@check("introspect_active")
def _():
    i = broker.call("Introspect", validation_pb2.IntrospectRequest(token=state["begun"].access_token))
    assert i.active and i.sub == "dev-agent" and i.scope == "demo:read" and i.lease_id == state["begun"].lease_id


@check("complete_then_introspect_inactive")
def _():
    done = broker.call("CompleteTask", broker_pb2.CompleteTaskRequest(lease_id=state["begun"].lease_id))
    assert done.state == "completed"
    i = broker.call("Introspect", validation_pb2.IntrospectRequest(token=state["begun"].access_token))
    assert not i.active


@check("issue_token_on_completed_lease_is_failed_precondition")
def _():
    expect_status(grpc.StatusCode.FAILED_PRECONDITION,
                  lambda: broker.call("IssueToken", broker_pb2.IssueTokenRequest(lease_id=state["begun"].lease_id)))


@check("disallowed_scope_is_permission_denied_naming_it")
def _():
    expect_status(grpc.StatusCode.PERMISSION_DENIED, lambda: begin(scopes=["demo:read", "demo:delete"]), "demo:delete")


@check("missing_task_id_is_invalid_argument")
def _():
    expect_status(grpc.StatusCode.INVALID_ARGUMENT, lambda: begin(task_id=""), "task_id")


@check("no_credentials_is_unauthenticated")
def _():
    expect_status(grpc.StatusCode.UNAUTHENTICATED, lambda: begin(secret=""))


@check("wrong_secret_is_unauthenticated")
def _():
    expect_status(grpc.StatusCode.UNAUTHENTICATED, lambda: begin(secret="not-the-secret"))


@check("unknown_method_is_unimplemented")
def _():
    stub = broker.channel.unary_unary("/credbroker.v1.AgentBroker/NoSuchMethod",
                                      request_serializer=lambda m: m.SerializeToString(), response_deserializer=lambda b: b)
    expect_status(grpc.StatusCode.UNIMPLEMENTED, lambda: stub(broker_pb2.CompleteTaskRequest(), timeout=5))


@check("health_check_serving_without_credentials")
def _():
    r = broker.call("HealthCheck", health_pb2.HealthCheckRequest(), secret="")
    assert r.status == health_pb2.HealthCheckResponse.SERVING


@check("tiny_deadline_is_deadline_exceeded_or_fast")
def _():
    try:
        begin(timeout=0.000001)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.code()


@check("gzip_request_works")
def _():
    assert begin(compression=grpc.Compression.Gzip).access_token


def events_until(cursor, count):
    """Reads `count` revocation events after `cursor`, then hangs up."""
    stream = broker.watch_revocations(cursor=cursor)
    events = []
    for e in stream:
        if e.kind == "heartbeat":
            continue
        events.append(e)
        if len(events) == count:
            break
    stream.cancel()
    return events


@check("watch_revocations_resumes_from_a_cursor_without_missing_or_repeating")
def _():
    first = begin()
    broker.call("CompleteTask", broker_pb2.CompleteTaskRequest(lease_id=first.lease_id))
    # Read everything retained until our own event shows up; its cursor is where we stand.
    stream = broker.watch_revocations(cursor="")
    cursor = None
    for e in stream:
        if e.lease_id == first.lease_id:
            assert e.cause == "completed" and e.kind == "lease", e
            cursor = e.cursor
            break
    stream.cancel()
    # Disconnected: two more tasks end, one by the agent, one by an operator.
    second, third = begin(), begin()
    broker.call("CompleteTask", broker_pb2.CompleteTaskRequest(lease_id=second.lease_id))
    operators.call("RevokeLease", operator_pb2.RevokeLeaseRequest(lease_id=third.lease_id, reason="python interop"))
    resumed = events_until(cursor, 2)
    assert [e.lease_id for e in resumed] == [second.lease_id, third.lease_id], resumed
    assert resumed[1].cause == "revoked" and resumed[1].actor == "dev-operator" and resumed[1].reason == "python interop", resumed[1]


@check("operator_revoke_is_idempotent_and_kills_the_token")
def _():
    r = begin()
    first = operators.call("RevokeLease", operator_pb2.RevokeLeaseRequest(lease_id=r.lease_id, reason="interop"))
    again = operators.call("RevokeLease", operator_pb2.RevokeLeaseRequest(lease_id=r.lease_id, reason="interop"))
    assert first.changed and not again.changed and again.lease.state == "revoked"
    assert not broker.call("Introspect", validation_pb2.IntrospectRequest(token=r.access_token)).active


@check("agent_secret_on_operator_listener_is_unauthenticated")
def _():
    expect_status(grpc.StatusCode.UNAUTHENTICATED,
                  lambda: operators.call("ListLeases", operator_pb2.ListLeasesRequest(), secret=os.environ["CREDBROKER_DEV_SECRET"]))


@check("reflection_lists_the_broker_services")
def _():
    names = broker.list_services()
    assert "credbroker.v1.AgentBroker" in names and "credbroker.v1.TokenValidation" in names, names
    assert "credbroker.v1.Operator" in operators.list_services()


for r in results:
    print(json.dumps(r))
sys.exit(0 if all(r["ok"] for r in results) else 1)
