#!/usr/bin/env python3
"""Sample agent runtime in Python (grpcio): one task, start to finish.

Begin a task, call the sample downstream API with the token, renew the lease (fresh token),
complete the task, and see the API reject the token afterwards.

    dotnet run --project src/CredBroker.Server -- --dev     # prints the dev secret
    dotnet run --project samples/DownstreamApi              # the demo-api on http://127.0.0.1:5500
    /usr/bin/python3 samples/python-agent/agent.py

Reads CREDBROKER_DEV_SECRET; CREDBROKER_ADDRESS (agent listener, default 127.0.0.1:5401) and
DEMO_API_URL (default http://127.0.0.1:5500) override the addresses.
With --admin it asks for demo:admin, which needs a human: it prints the approval id and waits on
WatchApproval until an operator decides (Operator.DecideApproval, see docs/policy.md).
"""
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

from google.protobuf.duration_pb2 import Duration

from credbroker_client import CredBroker, broker_pb2, validation_pb2


def call_api(api, token):
    """GET /tickets with the bearer token: (status, body or WWW-Authenticate challenge)."""
    request = urllib.request.Request(api + "/tickets", headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("WWW-Authenticate", "")


def main():
    secret = os.environ.get("CREDBROKER_DEV_SECRET")
    if not secret:
        sys.exit("set CREDBROKER_DEV_SECRET to the agent secret the dev broker printed")
    broker = CredBroker(os.environ.get("CREDBROKER_ADDRESS", "127.0.0.1:5401"), secret)
    if "--admin" in sys.argv[1:]:
        return admin(broker)

    api = os.environ.get("DEMO_API_URL", "http://127.0.0.1:5500").rstrip("/")

    begun = broker.call("BeginTask", broker_pb2.BeginTaskRequest(
        task_id="python-" + uuid.uuid4().hex, purpose="summarise open tickets", scopes=["demo:read"],
        audience="demo-api", ttl=Duration(seconds=300)))
    print(f"BeginTask: lease {begun.lease_id}, scopes {list(begun.granted_scopes)}, "
          f"lease deadline {begun.lease_deadline.ToJsonString()}")

    try:
        first = call_api(api, begun.access_token)
    except urllib.error.URLError as e:
        sys.exit(f"the demo API at {api} is not reachable ({e.reason}): start it with `dotnet run --project samples/DownstreamApi`")
    print(f"GET /tickets with the token: {first[0]} {first[1]}")

    renewed = broker.call("RenewLease", broker_pb2.RenewLeaseRequest(lease_id=begun.lease_id, extend_by=Duration(seconds=600)))
    print(f"RenewLease: lease deadline {renewed.lease_deadline.ToJsonString()}, "
          f"token expires {renewed.token_expires_at.ToJsonString()}")
    second = call_api(api, renewed.access_token)
    print(f"GET /tickets with the renewed token: {second[0]}")

    done = broker.call("CompleteTask", broker_pb2.CompleteTaskRequest(lease_id=begun.lease_id))
    print(f"CompleteTask: {done.state}")

    # The API hears of the completion over WatchRevocations within milliseconds; wait with a deadline.
    started = time.monotonic()
    after = call_api(api, renewed.access_token)
    while after[0] == 200 and time.monotonic() - started < 5:
        time.sleep(0.02)
        after = call_api(api, renewed.access_token)
    print(f"GET /tickets after completion: {after[0]} {after[1]} (after {int((time.monotonic() - started) * 1000)} ms)")

    introspected = broker.call("Introspect", validation_pb2.IntrospectRequest(token=renewed.access_token))
    print(f"Introspect after completion: active={introspected.active}")

    ok = first[0] == 200 and second[0] == 200 and done.state == "completed" and after[0] == 401 and not introspected.active
    print("The token worked during the task and is rejected after it." if ok else "UNEXPECTED: see the statuses above.")
    sys.exit(0 if ok else 1)


def admin(broker):
    begun = broker.call("BeginTask", broker_pb2.BeginTaskRequest(
        task_id="admin-" + uuid.uuid4().hex, purpose="python sample (admin)", scopes=["demo:admin"],
        audience="demo-api", ttl=Duration(seconds=600)))
    if not begun.approval_id:
        sys.exit("expected demo:admin to need approval")
    print(f"BeginTask: pending approval {begun.approval_id} ({begun.approval_reason}); expires {begun.lease_deadline.ToJsonString()}")
    print("  an operator decides with, e.g.:")
    print(f"  grpcurl -plaintext -H \"authorization: Bearer $CREDBROKER_DEV_OPERATOR_SECRET\" "
          f"-d '{{\"approval_id\":\"{begun.approval_id}\",\"verdict\":\"APPROVE\"}}' 127.0.0.1:5402 credbroker.v1.Operator/DecideApproval")
    for status in broker.watch_approval(begun.approval_id):
        print(f"WatchApproval: {status.state} {status.reason}")
        if status.state == "approved":
            print(f"  token for {list(status.granted_scopes)}, expires {status.token_expires_at.ToJsonString()}")
            broker.call("CompleteTask", broker_pb2.CompleteTaskRequest(lease_id=status.lease_id))


if __name__ == "__main__":
    main()
