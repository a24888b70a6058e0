#!/usr/bin/env python3
"""Sample agent: begin a task, check the token is active, complete the task, see it inactive.

Run against the dev-mode broker:
    export CREDBROKER_DEV_SECRET=...   # printed by `dotnet run --project src/CredBroker.Server -- --dev`
    /usr/bin/python3 samples/python-agent/agent.py

With --admin it asks for demo:admin, which needs a human: it prints the approval id and waits on
WatchApproval until an operator decides (Operator.DecideApproval, see docs/policy.md).
"""
import os
import sys
import uuid

from google.protobuf.duration_pb2 import Duration

from credbroker_client import CredBroker, broker_pb2, validation_pb2


def main():
    secret = os.environ.get("CREDBROKER_DEV_SECRET")
    if not secret:
        sys.exit("set CREDBROKER_DEV_SECRET to the agent secret the dev broker printed")
    broker = CredBroker(os.environ.get("CREDBROKER_ADDRESS", "127.0.0.1:5401"), secret)
    if "--admin" in sys.argv[1:]:
        return admin(broker)

    begun = broker.call("BeginTask", broker_pb2.BeginTaskRequest(
        task_id="sample-" + uuid.uuid4().hex, purpose="python sample", scopes=["demo:read"],
        audience="demo-api", ttl=Duration(seconds=600)))
    print(f"BeginTask: lease {begun.lease_id}, scopes {list(begun.granted_scopes)}, "
          f"token expires {begun.token_expires_at.ToJsonString()}, lease deadline {begun.lease_deadline.ToJsonString()}")

    active = broker.call("Introspect", validation_pb2.IntrospectRequest(token=begun.access_token))
    print(f"Introspect: active={active.active} sub={active.sub} scope={active.scope}")

    done = broker.call("CompleteTask", broker_pb2.CompleteTaskRequest(lease_id=begun.lease_id))
    print(f"CompleteTask: {done.state}")

    after = broker.call("Introspect", validation_pb2.IntrospectRequest(token=begun.access_token))
    print(f"Introspect after completion: active={after.active}")
    if not active.active or after.active:
        sys.exit("unexpected token state")


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
