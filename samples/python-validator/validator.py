#!/usr/bin/env python3
"""A downstream API in Python that accepts CredBroker tokens.

* validates access tokens offline against the broker's JWKS (PyJWT + cryptography: ES256, typ at+jwt,
  iss, aud, exp/nbf), enforces a scope per route;
* learns revocations from the broker's OpenID Shared Signals transmitter by poll delivery (RFC 8936):
  a background thread long-polls its stream, verifies each Security Event Token (typ secevent+jwt,
  ES256, iss, aud), applies the CAEP session-revoked event and acknowledges it; the stream lives at the
  broker, so after a restart the validator reuses it (--state-file) and receives what it missed;
* enforces DPoP binding (RFC 9449) when a token carries cnf.jkt: `Authorization: DPoP <token>` plus a
  `DPoP` proof (typ dpop+jwt, embedded public jwk whose RFC 7638 thumbprint is cnf.jkt, htm, htu,
  iat window, jti replay, ath); a bound token presented as Bearer is refused.

Fails closed: until the stream has caught up once, and whenever it has not been heard from for
--max-staleness seconds, protected routes answer 503.

Run: /usr/bin/python3 validator.py --broker http://127.0.0.1:5400 --audience demo-api --scope demo:read
     with SSF_RECEIVER_SECRET (or --receiver-secret-file) holding an SSF receiver secret.
"""
import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from jwt.algorithms import ECAlgorithm

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
POLL = "urn:ietf:rfc:8936"
DPOP_ALGS = ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def http_json(method, url, body=None, secret=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if secret:
        req.add_header("Authorization", "Bearer " + secret)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638: the required members, lexicographic order, no whitespace."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


class Revocations:
    """What the SSF stream said: revoked leases (until their deadline) and quarantined agents."""

    def __init__(self):
        self.lock = threading.Lock()
        self.leases = {}  # lease_id -> deny_until (unix seconds)
        self.agents = {}  # agent_id -> tokens issued before this instant are invalid
        self.caught_up = False
        self.last_heard = 0.0
        self.applied = 0

    def apply(self, event: dict):
        with self.lock:
            self.applied += 1
            if event.get("revocation") == "agent":
                agent = event["agent_id"]
                self.agents[agent] = max(self.agents.get(agent, 0), event["issued_before"])
            else:
                self.leases[event["lease_id"]] = max(self.leases.get(event["lease_id"], 0), event.get("deny_until", 0))
            now = time.time()
            self.leases = {k: v for k, v in self.leases.items() if v >= now - 60}

    def is_revoked(self, claims: dict) -> bool:
        with self.lock:
            if claims.get("lease_id") in self.leases:
                return True
            before = self.agents.get(claims.get("client_id"))
            return before is not None and claims.get("iat", 0) < before


class Validator:
    def __init__(self, args):
        self.args = args
        meta = http_json("GET", args.broker.rstrip("/") + "/.well-known/ssf-configuration")
        if POLL not in meta.get("delivery_methods_supported", []):
            sys.exit("the broker does not offer poll delivery")
        self.issuer = args.issuer or meta["issuer"]
        self.config_endpoint = meta["configuration_endpoint"]
        self.jwks = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True, lifespan=60)
        self.secret = args.receiver_secret
        self.revocations = Revocations()
        self.proofs_seen = {}  # DPoP jti -> expiry
        self.proofs_lock = threading.Lock()
        self.stream = self.open_stream()

    def open_stream(self):
        if self.args.state_file and os.path.exists(self.args.state_file):
            stream_id = open(self.args.state_file).read().strip()
            try:
                return http_json("GET", f"{self.config_endpoint}?stream_id={stream_id}", secret=self.secret)
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
        stream = http_json("POST", self.config_endpoint, {
            "delivery": {"method": POLL},
            "events_requested": [SESSION_REVOKED],
            "description": "python-validator",
        }, secret=self.secret)
        if self.args.state_file:
            with open(self.args.state_file, "w") as f:
                f.write(stream["stream_id"])
        return stream

    # --- SSF poll delivery (RFC 8936) ---
    def poll_forever(self):
        acks, errs, backoff = [], {}, 0.5
        url = self.stream["delivery"]["endpoint_url"]
        while True:
            try:
                body = {"ack": acks, "maxEvents": 100, "returnImmediately": not self.revocations.caught_up}
                if errs:
                    body["setErrs"] = errs
                resp = http_json("POST", url, body, secret=self.secret, timeout=self.args.long_poll_timeout)
                acks, errs, backoff = [], {}, 0.5
                for jti, token in resp.get("sets", {}).items():
                    try:
                        self.apply_set(token)
                        acks.append(jti)
                    except jwt.PyJWKClientError as e:
                        if "Fail to fetch" not in str(e):  # PyJWT 2.6 has one class for "unreachable" and "no such key"
                            errs[jti] = {"err": "invalid_key", "description": str(e)}
                            continue
                        # The JWKS is unreachable: not a bad SET. Leave it unacknowledged; it comes again.
                        print(f"python-validator: cannot verify SET {jti} yet ({e})", file=sys.stderr, flush=True)
                    except jwt.PyJWTError as e:
                        errs[jti] = {"err": "invalid_request", "description": str(e)}
                self.revocations.last_heard = time.time()
                if not resp.get("moreAvailable") and not resp.get("sets"):
                    self.revocations.caught_up = True
            except Exception as e:  # the broker is down or slow: retry with backoff, keep the acks
                print(f"python-validator: poll failed ({e}); retrying in {backoff:.1f}s", file=sys.stderr, flush=True)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5)

    def apply_set(self, token: str):
        header = jwt.get_unverified_header(token)
        if header.get("typ") != "secevent+jwt":
            raise jwt.InvalidTokenError("not a SET (typ)")
        key = self.jwks.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["ES256"], issuer=self.issuer, audience=self.stream["aud"],
                            options={"require": ["iss", "aud", "iat", "jti"], "verify_exp": False})
        event = claims.get("events", {}).get(SESSION_REVOKED)
        if event is not None:
            self.revocations.apply(event)

    # --- access tokens ---
    def authorize(self, method: str, url: str, headers) -> tuple[int, dict]:
        stale = time.time() - self.revocations.last_heard > self.args.max_staleness
        if not self.revocations.caught_up or stale:
            return 503, {"error": "temporarily_unavailable", "error_description": "the revocation stream is not current"}
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() not in ("bearer", "dpop") or not token:
            return 401, {"error": "invalid_token", "error_description": "send Authorization: Bearer|DPoP <token>"}
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != "at+jwt" or header.get("alg") != "ES256":
                raise jwt.InvalidTokenError("not a CredBroker access token (typ/alg)")
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["ES256"], issuer=self.issuer, audience=self.args.audience,
                                options={"require": ["exp", "iat", "nbf", "jti"]}, leeway=5)
        except jwt.PyJWTError as e:
            return 401, {"error": "invalid_token", "error_description": str(e)}
        if self.revocations.is_revoked(claims):
            return 401, {"error": "invalid_token", "error_description": "the token was revoked"}
        jkt = (claims.get("cnf") or {}).get("jkt")
        if jkt is not None or scheme.lower() == "dpop":
            problem = self.check_dpop(scheme, token, jkt, method, url, headers)
            if problem:
                return 401, {"error": "invalid_dpop_proof" if jkt else "invalid_token", "error_description": problem}
        if self.args.scope not in claims.get("scope", "").split(" "):
            return 403, {"error": "insufficient_scope", "error_description": f"requires scope {self.args.scope}"}
        return 200, {"ok": True, "agent": claims.get("client_id"), "lease_id": claims.get("lease_id")}

    def check_dpop(self, scheme, token, jkt, method, url, headers):
        if jkt is None:
            return "a DPoP scheme needs a DPoP-bound token (cnf.jkt)"
        if scheme.lower() != "dpop":
            return "this token is DPoP-bound: present it with Authorization: DPoP and a DPoP proof"
        proofs = headers.get_all("DPoP") or []
        if len(proofs) != 1:
            return "exactly one DPoP header is required"
        try:
            header = jwt.get_unverified_header(proofs[0])
            if header.get("typ") != "dpop+jwt" or header.get("alg") not in DPOP_ALGS:
                return "the proof's typ must be dpop+jwt with an asymmetric alg"
            jwk = header.get("jwk")
            if not isinstance(jwk, dict) or "d" in jwk or jwk.get("kty") != "EC":
                return "the proof must embed a public EC jwk"
            if jwk_thumbprint(jwk) != jkt:
                return "the proof key is not the key the token is bound to (cnf.jkt)"
            public_key = ECAlgorithm.from_jwk(json.dumps(jwk))
            claims = jwt.decode(proofs[0], public_key, algorithms=[header["alg"]], options={"require": ["iat", "jti", "htm", "htu"], "verify_aud": False})
        except (jwt.PyJWTError, KeyError, ValueError) as e:
            return f"the DPoP proof is invalid ({e})"
        if claims["htm"] != method or claims["htu"].split("?")[0].split("#")[0] != url:
            return "the proof's htm/htu do not match this request"
        if abs(time.time() - claims["iat"]) > 60:
            return "the proof's iat is outside the accepted window"
        if claims.get("ath") != b64url(hashlib.sha256(token.encode()).digest()):
            return "the proof's ath does not match the access token"
        with self.proofs_lock:
            now = time.time()
            if len(self.proofs_seen) > 10000:
                self.proofs_seen = {k: v for k, v in self.proofs_seen.items() if v > now}
            if self.proofs_seen.get(claims["jti"], 0) > now:
                return "the proof was replayed (jti)"
            self.proofs_seen[claims["jti"]] = now + 120
        return None


def serve(validator: Validator, port: int):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # no request log (it would hold tokens)
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="python-validator", DPoP algs="ES256"')
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                r = validator.revocations
                return self.reply(200, {"stream_id": validator.stream["stream_id"], "caught_up": r.caught_up, "applied": r.applied})
            if self.path.split("?")[0] != "/resource":
                return self.reply(404, {"error": "not_found"})
            url = f"http://{self.headers.get('Host', f'127.0.0.1:{port}')}{self.path.split('?')[0]}"
            self.reply(*validator.authorize("GET", url, self.headers))

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"python-validator: listening on http://127.0.0.1:{server.server_port}/resource (stream {validator.stream['stream_id']})", flush=True)
    server.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default=os.environ.get("CREDBROKER_HTTP", "http://127.0.0.1:5400"), help="the broker's HTTP listener")
    p.add_argument("--issuer", help="expected iss (default: the SSF metadata's issuer)")
    p.add_argument("--audience", default="demo-api")
    p.add_argument("--scope", default="demo:read", help="the scope /resource requires")
    p.add_argument("--port", type=int, default=5410)
    p.add_argument("--receiver-secret-file", help="file with the SSF receiver secret (else env SSF_RECEIVER_SECRET)")
    p.add_argument("--state-file", help="remembers the stream id across restarts (to catch up on what was missed)")
    p.add_argument("--max-staleness", type=float, default=75.0, help="seconds without a successful poll before failing closed")
    p.add_argument("--long-poll-timeout", type=float, default=40.0, help="client timeout of one poll (longer than the broker's MaxLongPoll)")
    args = p.parse_args()
    args.receiver_secret = open(args.receiver_secret_file).read().strip() if args.receiver_secret_file else os.environ.get("SSF_RECEIVER_SECRET")
    if not args.receiver_secret:
        sys.exit("set SSF_RECEIVER_SECRET or --receiver-secret-file")
    validator = Validator(args)
    threading.Thread(target=validator.poll_forever, daemon=True).start()
    serve(validator, args.port)


if __name__ == "__main__":
    main()
