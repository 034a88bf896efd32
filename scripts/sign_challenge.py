#!/usr/bin/env python3
"""Sign a Yiwang certificate-login challenge with a certificate's private key, as a
UKey's middleware would: for testing and for holders without a UKey driver.

    scripts/sign_challenge.py --key key.pem CHALLENGE
    scripts/sign_challenge.py --p12 company.p12 [--password-env VAR] CHALLENGE
    scripts/sign_challenge.py --key sm2.key [--signer-id ID] [--raw] CHALLENGE

Prints the signature (base64) to paste into the login page. The signed bytes are
``yiwang-certificate-login:`` + CHALLENGE (UTF-8): the prefix keeps a signature made for
Yiwang from being valid for anything else.
- SM2 keys (PEM or DER, PKCS#8 or SEC 1, or PKCS#12): SM2 with SM3 over the Z value of the
  signer ID (GB/T 32918.2; GM/T 0009 default 1234567812345678 unless --signer-id), as a
  DER SEQUENCE {r, s} like UKey middleware returns it, or the 64-byte r||s with --raw.
- ECDSA keys: SHA-256, DER signature. RSA keys: PKCS#1 v1.5 with SHA-256.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from certificates import sm2  # noqa: E402

PREFIX = b"yiwang-certificate-login:"


def load_key(args: argparse.Namespace) -> object:
    """The private key: pyca/cryptography for RSA and ECDSA, the SM2 backend when
    cryptography cannot read the key (it does not know the SM2 curve)."""
    password = os.environ.get(args.password_env, "").encode() if args.password_env else None
    data = Path(args.p12 or args.key).read_bytes()
    try:
        if args.p12:
            key, _, _ = pkcs12.load_key_and_certificates(data, password or None)
            return key
        if data.lstrip().startswith(b"-----BEGIN"):
            return serialization.load_pem_private_key(data, password or None)
        return serialization.load_der_private_key(data, password or None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as first:
        try:
            return sm2.load_private_key(data, password or None, pkcs12=bool(args.p12))
        except (ValueError, TypeError):
            raise SystemExit(f"cannot read the key: {first}") from None


def sign(key: object, challenge: str, *, signer_id: str = sm2.DEFAULT_SIGNER_ID, raw: bool = False) -> str:
    data = PREFIX + challenge.encode("utf-8")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = sm2.sign(key, data, signer_id, raw=raw)
    return base64.b64encode(signature).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--key", help="private key file (PEM or DER)")
    group.add_argument("--p12", help="PKCS#12 file with the key and certificate")
    parser.add_argument("--password-env", help="environment variable holding the key/PKCS#12 password")
    parser.add_argument("--signer-id", default=sm2.DEFAULT_SIGNER_ID,
                        help="SM2 signer ID (default: the GM/T 0009 default 1234567812345678)")
    parser.add_argument("--raw", action="store_true", help="SM2: print r||s (64 bytes) instead of DER")
    parser.add_argument("challenge")
    args = parser.parse_args(argv)
    print(sign(load_key(args), args.challenge, signer_id=args.signer_id, raw=args.raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())
