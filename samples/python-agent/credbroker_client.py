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
# Every credbroker/v1 file, so a new file imported by operator.proto needs no change here.
_CONTRACT = sorted("credbroker/v1/" + f for f in os.listdir(os.path.join(PROTOS, "credbroker", "v1")) if f.endswith(".proto"))
subprocess.run(
    ["protoc", f"-I{PROTOS}", f"--python_out={_GEN}", *_CONTRACT,
     "grpc/health/v1/health.proto", "grpc/reflection/v1alpha/reflection.proto"],
    check=True)
sys.path.insert(0, _GEN)

from credbroker.v1 import agent_broker_pb2 as broker_pb2  # noqa: E402
from credbroker.v1 import token_validation_pb2 as validation_pb2  # noqa: E402
from credbroker.v1 import operator_pb2  # noqa: E402
from credbroker.v1 import operator_approvals_pb2  # noqa: E402


def _load(name, *path):
    # `grpc` is grpcio's package name, so generated grpc/... modules are loaded by path.
    spec = importlib.util.spec_from_file_location(name, os.path.join(_GEN, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


health_pb2 = _load("health_pb2", "grpc", "health", "v1", "health_pb2.py")
reflection_pb2 = _load("reflection_pb2", "grpc", "reflection", "v1alpha", "reflection_pb2.py")

_METHODS = {
    "BeginTask": ("/credbroker.v1.AgentBroker/BeginTask", broker_pb2.BeginTaskRequest, broker_pb2.BeginTaskResponse),
    "IssueToken": ("/credbroker.v1.AgentBroker/IssueToken", broker_pb2.IssueTokenRequest, broker_pb2.IssueTokenResponse),
    "RenewLease": ("/credbroker.v1.AgentBroker/RenewLease", broker_pb2.RenewLeaseRequest, broker_pb2.RenewLeaseResponse),
    "CompleteTask": ("/credbroker.v1.AgentBroker/CompleteTask", broker_pb2.CompleteTaskRequest, broker_pb2.CompleteTaskResponse),
    "Introspect": ("/credbroker.v1.TokenValidation/Introspect", validation_pb2.IntrospectRequest, validation_pb2.IntrospectResponse),
    "GetSigningKeys": ("/credbroker.v1.TokenValidation/GetSigningKeys", validation_pb2.GetSigningKeysRequest, validation_pb2.GetSigningKeysResponse),
    "HealthCheck": ("/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse),
    "ListLeases": ("/credbroker.v1.Operator/ListLeases", operator_pb2.ListLeasesRequest, operator_pb2.ListLeasesResponse),
    "GetLease": ("/credbroker.v1.Operator/GetLease", operator_pb2.GetLeaseRequest, operator_pb2.Lease),
    "RevokeLease": ("/credbroker.v1.Operator/RevokeLease", operator_pb2.RevokeLeaseRequest, operator_pb2.RevokeLeaseResponse),
    "QuarantineAgent": ("/credbroker.v1.Operator/QuarantineAgent", operator_pb2.QuarantineAgentRequest, operator_pb2.QuarantineAgentResponse),
    "ListApprovals": ("/credbroker.v1.Operator/ListApprovals", operator_approvals_pb2.ListApprovalsRequest, operator_approvals_pb2.ListApprovalsResponse),
    "DecideApproval": ("/credbroker.v1.Operator/DecideApproval", operator_approvals_pb2.DecideApprovalRequest, operator_approvals_pb2.DecideApprovalResponse),
    "ReleaseAgent": ("/credbroker.v1.Operator/ReleaseAgent", operator_pb2.ReleaseAgentRequest, operator_pb2.ReleaseAgentResponse),
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

    def watch_revocations(self, cursor="", from_now=False, timeout=10):
        """The WatchRevocations server stream: an iterator of RevocationEvent (cancel() it when done)."""
        stub = self.channel.unary_stream("/credbroker.v1.TokenValidation/WatchRevocations",
                                         request_serializer=validation_pb2.WatchRevocationsRequest.SerializeToString,
                                         response_deserializer=validation_pb2.RevocationEvent.FromString)
        return stub(validation_pb2.WatchRevocationsRequest(cursor=cursor, from_now=from_now),
                    metadata=[("authorization", "Bearer " + self.secret)], timeout=timeout)

    def watch_approval(self, approval_id, timeout=900):
        """The WatchApproval server stream: ApprovalStatus messages until the approval is decided or expires."""
        stub = self.channel.unary_stream("/credbroker.v1.AgentBroker/WatchApproval",
                                         request_serializer=broker_pb2.WatchApprovalRequest.SerializeToString,
                                         response_deserializer=broker_pb2.ApprovalStatus.FromString)
        return stub(broker_pb2.WatchApprovalRequest(approval_id=approval_id),
                    metadata=[("authorization", "Bearer " + self.secret)], timeout=timeout)

    def list_services(self):
        """Server reflection (v1alpha): the names of the services this listener serves."""
        stub = self.channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                          request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                          response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        answers = stub(iter([reflection_pb2.ServerReflectionRequest(list_services="*")]), timeout=10)
        return [s.name for answer in answers for s in answer.list_services_response.service]

