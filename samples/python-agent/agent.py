#!/usr/bin/env python3
"""Sample agent: begin a task, check the token is active, complete the task, see it inactive.

Run against the dev-mode broker:
    export CREDBROKER_DEV_SECRET=...   # printed by `dotnet run --project src/CredBroker.Server -- --dev`
    /usr/bin/python3 samples/python-agent/agent.py
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


if __name__ == "__main__":
    main()
