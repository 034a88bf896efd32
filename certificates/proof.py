"""Proof of possession for certificate login: the holder signs a fresh, single-use
challenge with the certificate's private key (UKey middleware, or
scripts/sign_challenge.py). Pure: no Flask, no database."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

# Domain separation: a signature made for Yiwang's login is useless anywhere else, and a
# signature made elsewhere cannot be replayed here.
PREFIX = b"yiwang-certificate-login:"
MAX_SIGNATURE = 2048


def signed_bytes(challenge: str) -> bytes:
    return PREFIX + challenge.encode("utf-8")


def verify_possession(cert: x509.Certificate, challenge: str, signature_b64: str) -> bool:
    """True when ``signature_b64`` is the certificate key's signature over the challenge:
    ECDSA with SHA-256, or RSA PKCS#1 v1.5 / PSS with SHA-256."""
    if len(signature_b64) > MAX_SIGNATURE:
        return False
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    data = signed_bytes(challenge)
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        if isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
                return True
            except InvalidSignature:
                key.verify(signature, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                         salt_length=padding.PSS.AUTO), hashes.SHA256())
                return True
    except (InvalidSignature, ValueError):
        return False
    return False
