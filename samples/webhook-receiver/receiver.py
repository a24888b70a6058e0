#!/usr/bin/env python3
"""A small receiver for CredBroker's approval webhooks (standard library only).

It verifies every delivery before trusting it:
  * X-CredBroker-Timestamp: unix seconds; refused when more than --tolerance seconds from now
    (a captured delivery cannot be replayed later);
  * X-CredBroker-Signature: "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body), compared in
    constant time (several comma-separated values are accepted, for secret rotation);
  * the body is a CloudEvents 1.0 structured JSON event.
Deliveries are at-least-once: the same event id can arrive again (a retry after a lost answer);
it is acknowledged and not processed twice.

    python3 receiver.py --port 8080 --secret-file /run/secrets/credbroker-webhook [--out events.jsonl]

Here "processing" is printing the approval and its console link; a real receiver would post to
a chat channel or open a ticket. --fail-first N answers 503 to the first N valid deliveries
(to watch the broker retry).
"""
import argparse
import base64
import binascii
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024
DEFAULT_TOLERANCE = 300


class Rejected(Exception):
    """A delivery that must not be trusted."""


def load_secret(path):
    """The shared secret as the broker reads it: base64 when it decodes to at least 32 bytes, else the text itself."""
    with open(path, "rb") as f:
        text = f.read().strip()
    try:
        decoded = base64.b64decode(text, validate=True)
        if len(decoded) >= 32:
            return decoded
    except (binascii.Error, ValueError):
        pass
    return text


def sign(secret, timestamp, body):
    return "v1=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify(secret, timestamp, signature, body, now=None, tolerance=DEFAULT_TOLERANCE):
    """Returns the event when the delivery is authentic and fresh; raises Rejected otherwise."""
    if not timestamp or not timestamp.isdigit():
        raise Rejected("missing or malformed X-CredBroker-Timestamp")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        raise Rejected("timestamp outside the tolerance (a replay, or a clock far off)")
    expected = sign(secret, timestamp, body)
    candidates = [s.strip() for s in (signature or "").split(",") if s.strip()]
    if not any(hmac.compare_digest(expected.encode("ascii"), c.encode("ascii", "replace")) for c in candidates):
        raise Rejected("signature does not match")
    try:
        event = json.loads(body)
    except ValueError:
        raise Rejected("body is not JSON")
    if not isinstance(event, dict) or event.get("specversion") != "1.0" or not event.get("id") or not event.get("type"):
        raise Rejected("not a CloudEvents 1.0 event")
    return event


class Receiver:
    def __init__(self, secret, out=None, fail_first=0, tolerance=DEFAULT_TOLERANCE):
        self.secret = secret
        self.out = out
        self.fail_first = fail_first
        self.tolerance = tolerance
        self.seen = set()
        self.lock = threading.Lock()

    def handle(self, headers, body):
        """(status, text) for one delivery."""
        try:
            event = verify(self.secret, headers.get("X-CredBroker-Timestamp"), headers.get("X-CredBroker-Signature"), body,
                           tolerance=self.tolerance)
        except Rejected as e:
            return 401, "rejected: %s" % e
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return 503, "try again later"
            if event["id"] in self.seen:
                return 200, "duplicate (already processed)"
            self.seen.add(event["id"])
            data = event.get("data") or {}
            print("approval requested: %s by %s for %s: %s -> %s" % (
                data.get("approval_id"), data.get("agent_id"), data.get("owner"),
                " ".join(data.get("requested_scopes") or []), data.get("console_url")), flush=True)
            if self.out:
                with open(self.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"event": event, "delivery": headers.get("X-CredBroker-Delivery")}) + "\n")
        return 200, "ok"


def serve(port, receiver, host="127.0.0.1"):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            status, text = receiver.handle(self.headers, self.rfile.read(length))
            payload = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, fmt, *args):
            sys.stderr.write("receiver: " + (fmt % args) + "\n")

    server = ThreadingHTTPServer((host, port), Handler)
    print("listening on http://%s:%d/" % (host, port), flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--out", help="append each processed event as a JSON line")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--tolerance", type=int, default=DEFAULT_TOLERANCE)
    args = parser.parse_args()
    serve(args.port, Receiver(load_secret(args.secret_file), args.out, args.fail_first, args.tolerance), args.host)


if __name__ == "__main__":
    main()
