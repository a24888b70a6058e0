"""A small CredBroker client on Debian's python3-grpcio.

Message classes are generated from ../../protos with protoc at import time into a temp dir
(Debian ships no grpc_tools), and the RPC stubs are plain channel.unary_unary calls.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROTOS = os.path.join(ROOT, "protos")
_GEN = tempfile.mkdtemp(prefix="credbroker-pb-")
subprocess.run(
    ["protoc", f"-I{PROTOS}", f"--python_out={_GEN}",
     "credbroker/v1/agent_broker.proto", "credbroker/v1/token_validation.proto", "grpc/health/v1/health.proto"],
    check=True)
sys.path.insert(0, _GEN)

from credbroker.v1 import agent_broker_pb2 as broker_pb2  # noqa: E402
from credbroker.v1 import token_validation_pb2 as validation_pb2  # noqa: E402
# `grpc` is grpcio's package name, so the generated grpc/health/v1 module is loaded by path.
_spec = importlib.util.spec_from_file_location("health_pb2", os.path.join(_GEN, "grpc", "health", "v1", "health_pb2.py"))
health_pb2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(health_pb2)

_METHODS = {
    "BeginTask": ("/credbroker.v1.AgentBroker/BeginTask", broker_pb2.BeginTaskRequest, broker_pb2.BeginTaskResponse),
    "IssueToken": ("/credbroker.v1.AgentBroker/IssueToken", broker_pb2.IssueTokenRequest, broker_pb2.IssueTokenResponse),
    "RenewLease": ("/credbroker.v1.AgentBroker/RenewLease", broker_pb2.RenewLeaseRequest, broker_pb2.RenewLeaseResponse),
    "CompleteTask": ("/credbroker.v1.AgentBroker/CompleteTask", broker_pb2.CompleteTaskRequest, broker_pb2.CompleteTaskResponse),
    "Introspect": ("/credbroker.v1.TokenValidation/Introspect", validation_pb2.IntrospectRequest, validation_pb2.IntrospectResponse),
    "GetSigningKeys": ("/credbroker.v1.TokenValidation/GetSigningKeys", validation_pb2.GetSigningKeysRequest, validation_pb2.GetSigningKeysResponse),
    "HealthCheck": ("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse),
}


class CredBroker:
    def __init__(self, address, secret):
        self.channel = grpc.insecure_channel(address)
        self.secret = secret

    def call(self, name, request, secret=None, timeout=10, compression=None):
        path, req_type, resp_type = _METHODS[name]
        stub = self.channel.unary_unary(path, request_serializer=req_type.SerializeToString,
                                        response_deserializer=resp_type.FromString)
        token = self.secret if secret is None else secret
        metadata = [("authorization", "Bearer " + token)] if token else []
        return stub(request, metadata=metadata, timeout=timeout, compression=compression)
