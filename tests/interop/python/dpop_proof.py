#!/usr/bin/python3
"""DPoP proofs (RFC 9449) made independently of the .NET code: PyJWT + cryptography.

Usage: dpop_proof.py <alg> <htm> <htu> [iat_offset_seconds]
Prints one JSON object: {"proof": ..., "jkt": ...}; jkt is the RFC 7638 thumbprint computed here.
alg: ES256 or PS256 (a fresh key each run).
"""
import base64
import hashlib
import json
import sys
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_bytes(value: int, length: int = 0) -> bytes:
    length = length or (value.bit_length() + 7) // 8
    return value.to_bytes(length, "big")


def main() -> None:
    alg, htm, htu = sys.argv[1], sys.argv[2], sys.argv[3]
    offset = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": b64(int_bytes(numbers.x, 32)), "y": b64(int_bytes(numbers.y, 32))}
        required = ["crv", "kty", "x", "y"]
    elif alg == "PS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": b64(int_bytes(numbers.n)), "e": b64(int_bytes(numbers.e))}
        required = ["e", "kty", "n"]
    else:
        raise SystemExit("alg must be ES256 or PS256")

    # RFC 7638: the required members, lexicographic order, no whitespace.
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    jkt = b64(hashlib.sha256(canonical.encode("utf-8")).digest())
    claims = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": int(time.time()) + offset}
    proof = jwt.encode(claims, key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk})
    print(json.dumps({"proof": proof, "jkt": jkt}))


if __name__ == "__main__":
    main()
