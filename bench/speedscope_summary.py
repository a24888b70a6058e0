#!/usr/bin/env python3
"""Summarises a dotnet-trace CPU-sampling profile (speedscope JSON) by component.

Each moment of each thread is given to the component of the frame nearest the leaf that matches a
rule below; stacks whose leaf is a wait (blocked threads, which the sample profiler also records)
are left out (see BUSY_NATIVE below), so the shares are of busy time. Used by bench/profile.sh.
"""
import json
import sys
from collections import defaultdict

# (component, substrings of a frame name), checked leaf first; the first frame that matches decides.
RULES = [
    ("ES256 sign (token)", ["SigningKey.Sign", "ECDsa.SignData", "EcDsaSign", "CryptoNative_EcDsaSign"]),
    ("credential check (IdentityModel, ES256 verify)", ["Microsoft.IdentityModel", "VerifyData", "EcDsaVerify"]),
    ("token build (JSON, base64url)", ["TokenMinter", "Base64Url", "Utf8JsonWriter"]),
    ("policy", ["CredBroker.Core.Policy"]),
    ("protobuf", ["Google.Protobuf"]),
    ("Redis client (StackExchange.Redis)", ["StackExchange.Redis"]),
    ("broker core (TaskBroker, validation, leases)", ["CredBroker.Core"]),
    ("lease store adapter", ["CredBroker.Redis"]),
    ("gRPC (Grpc.AspNetCore, Grpc.Net.Client)", ["Grpc.AspNetCore", "Grpc.Net.Client", "Grpc.Core"]),
    ("server services and auth", ["CredBroker.Server"]),
    ("Kestrel HTTP/2", ["Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http.HPack", "System.IO.Pipelines"]),
    ("sockets", ["System.Net.Sockets", "Interop+Sys.Send", "Interop+Sys.Receive", "Interop+Sys.Read", "Interop+Sys.Write"]),
    ("thread pool (dispatch, spinning)", ["System.Threading.ThreadPool", "PortableThreadPool", "LowLevelSpinWaiter", "SpinWait", "WorkStealingQueue"]),
    ("logging", ["Microsoft.Extensions.Logging", "Serilog"]),
]
# dotnet-sampled-thread-time puts a pseudo-frame on each sample: CPU_TIME (running managed code) or
# UNMANAGED_CODE_TIME (in native code: blocked in a wait, or busy in e.g. OpenSSL). Native time counts
# as busy only under these frames; everything else native (epoll, semaphores, inotify) is waiting.
BUSY_NATIVE = ["Interop+Crypto", "ECDsa", "EcDsa", "RandomNumberGenerator", "Interop+Sys.Send", "Interop+Sys.Write",
               "Interop+Sys.Receive", "Interop+Sys.Recv", "SHA256", "HashProvider"]
WAITS = ["WaitForSignal", "WaitOneNoCheck", "Monitor.Wait", "Thread.Sleep", "WaitForSocketEvents", "SemaphoreSlim.Wait",
         "WaitHandle.Wait", "Thread.Join", "LowLevelLifoSemaphore.Wait", "WaitNative"]


def classify(stack, names):
    if not stack:
        return None
    frames = list(stack)
    if names[frames[-1]] in ("CPU_TIME", "UNMANAGED_CODE_TIME"):
        state = names[frames.pop()]
        if not frames:
            return None
        if state == "UNMANAGED_CODE_TIME" and not any(m in names[frames[-1]] for m in BUSY_NATIVE):
            return None
    # "?!?" is native code without symbols; on these threads it is the sockets' epoll wait.
    if names[frames[-1]] == "?!?" or any(w in names[frames[-1]] for w in WAITS):
        return None
    for frame in reversed(frames):
        name = names[frame]
        for component, markers in RULES:
            if any(m in name for m in markers):
                return component
    return "other (runtime, BCL, GC)"


def main(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    names = [fr.get("name", "?") for fr in doc["shared"]["frames"]]
    totals = defaultdict(float)
    leaves = defaultdict(float)
    for profile in doc["profiles"]:
        if profile.get("type") == "sampled":
            for stack, weight in zip(profile["samples"], profile["weights"]):
                component = classify(stack, names)
                if component:
                    totals[component] += weight
            continue
        stack, last = [], None
        for event in profile.get("events", []):
            if last is not None and event["at"] > last:
                component = classify(stack, names)
                if component:
                    totals[component] += event["at"] - last
                    leaves[(component, names[stack[-2] if len(stack) > 1 else stack[-1]])] += event["at"] - last
            last = event["at"]
            if event["type"] == "O":
                stack.append(event["frame"])
            elif stack:
                stack.pop()
    busy = sum(totals.values())
    if busy == 0:
        print("PROFILE no on-CPU samples")
        return
    print(f"broker on-CPU samples by component (share of {busy:.0f} ms sampled thread time, waits excluded):")
    for component, value in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * value / busy:5.1f}%  {component}")
    if "--leaves" in sys.argv:
        for (component, leaf), value in sorted(leaves.items(), key=lambda kv: -kv[1])[:25]:
            print(f"  {100 * value / busy:5.1f}%  {component}: {leaf[:150]}")


if __name__ == "__main__":
    main(sys.argv[1])
