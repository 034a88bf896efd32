#!/usr/bin/env python3
"""Sign a Yiwang certificate-login challenge with a certificate's private key, as a
UKey's middleware would: for testing and for holders without a UKey driver.

    scripts/sign_challenge.py --key key.pem CHALLENGE
    scripts/sign_challenge.py --p12 company.p12 [--password-env VAR] CHALLENGE

Prints the signature (base64) to paste into the login page. The signed bytes are
``yiwang-certificate-login:`` + CHALLENGE (UTF-8): the prefix keeps a signature made for
Yiwang from being valid for anything else. ECDSA keys sign with SHA-256 (DER signature),
RSA keys with PKCS#1 v1.5 and SHA-256.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

PREFIX = b"yiwang-certificate-login:"


def load_key(args: argparse.Namespace) -> object:
    password = os.environ.get(args.password_env, "").encode() if args.password_env else None
    if args.p12:
        key, _, _ = pkcs12.load_key_and_certificates(Path(args.p12).read_bytes(), password or None)
        return key
    return serialization.load_pem_private_key(Path(args.key).read_bytes(), password or None)


def sign(key: object, challenge: str) -> str:
    data = PREFIX + challenge.encode("utf-8")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise SystemExit("unsupported key type (ECDSA or RSA; SM2 is not supported yet)")
    return base64.b64encode(signature).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--key", help="PEM private key file")
    group.add_argument("--p12", help="PKCS#12 file with the key and certificate")
    parser.add_argument("--password-env", help="environment variable holding the key/PKCS#12 password")
    parser.add_argument("challenge")
    args = parser.parse_args(argv)
    print(sign(load_key(args), args.challenge))
    return 0


if __name__ == "__main__":
    sys.exit(main())
