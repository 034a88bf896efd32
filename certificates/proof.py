"""Proof of possession for certificate login: the holder signs a fresh, single-use
challenge with the certificate's private key (UKey middleware, or
scripts/sign_challenge.py). Pure: no Flask, no database.

Accepted signatures over ``signed_bytes(challenge)``:
- SM2 keys: SM2 with SM3 and the Z value of the holder's signer ID (GB/T 32918.2 §6.1),
  DER ``SEQUENCE {r, s}`` as UKey middleware (GM/T 0016 SKF, GB/T 35276 §7.3) returns it,
  or the raw 64-octet r ‖ s;
- ECDSA keys: SHA-256, DER (RFC 3279 §2.2.3);
- RSA keys: PKCS#1 v1.5 or PSS with SHA-256 (RFC 8017 §8).
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from . import sm2
from .der import DerError
from .signatures import declares_sm2_key, public_key_info

# Domain separation: a signature made for Yiwang's login is useless anywhere else, and a
# signature made elsewhere cannot be replayed here.
PREFIX = b"yiwang-certificate-login:"
MAX_SIGNATURE = 2048


class ProofFailure(enum.StrEnum):
    """Why the challenge signature was refused (audited as the reason)."""

    BAD_SIGNATURE = "bad_signature_proof"
    NOT_BASE64 = "signature_not_base64"
    TRUNCATED = "signature_truncated"
    NOT_CANONICAL = "signature_not_canonical"
    MALFORMED = "signature_malformed"
    SIGNER_ID = "sm2_signer_id"
    WRONG_CURVE = "sm2_wrong_curve"
    UNSUPPORTED_KEY = "unsupported_key"


_SM2_FAILURES = {
    sm2.Sm2Failure.TRUNCATED: ProofFailure.TRUNCATED,
    sm2.Sm2Failure.NOT_CANONICAL: ProofFailure.NOT_CANONICAL,
    sm2.Sm2Failure.MALFORMED: ProofFailure.MALFORMED,
    sm2.Sm2Failure.NOT_SM2_KEY: ProofFailure.WRONG_CURVE,
    sm2.Sm2Failure.BAD_SIGNATURE: ProofFailure.BAD_SIGNATURE,
}


def signed_bytes(challenge: str) -> bytes:
    return PREFIX + challenge.encode("utf-8")


def check_possession(cert: x509.Certificate, challenge: str, signature_b64: str, *,
                     signer_id: str = sm2.DEFAULT_SIGNER_ID, other_ids: Sequence[str] = ()) -> ProofFailure | None:
    """None when ``signature_b64`` is the certificate key's signature over the challenge,
    otherwise why not. ``signer_id`` is the SM2 ID the holder's middleware uses (the CA
    profile's ``sm2_holder_signer_id``); ``other_ids`` are only tried to say SIGNER_ID
    instead of BAD_SIGNATURE."""
    if len(signature_b64) > MAX_SIGNATURE:
        return ProofFailure.MALFORMED
    try:
        signature = base64.b64decode("".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        return ProofFailure.NOT_BASE64
    data = signed_bytes(challenge)
    if declares_sm2_key(cert):
        return _check_sm2(cert, signature, data, signer_id, other_ids)
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return ProofFailure.UNSUPPORTED_KEY
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return None
        if isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                key.verify(signature, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                         salt_length=padding.PSS.AUTO), hashes.SHA256())
            return None
    except (InvalidSignature, ValueError):
        return ProofFailure.BAD_SIGNATURE
    return ProofFailure.UNSUPPORTED_KEY


def _check_sm2(cert: x509.Certificate, signature: bytes, data: bytes, signer_id: str,
               other_ids: Sequence[str]) -> ProofFailure | None:
    try:
        spki = public_key_info(cert).der
    except DerError:
        return ProofFailure.UNSUPPORTED_KEY
    try:
        sm2.verify(spki, signature, data, signer_id, allow_raw=True)
        return None
    except sm2.Sm2Error as exc:
        if exc.failure is not sm2.Sm2Failure.BAD_SIGNATURE:
            return _SM2_FAILURES[exc.failure]
    if len(signature) == sm2.RAW_SIGNATURE_BYTES and signature[:1] == b"\x30" and _truncated_der(signature):
        # 64 octets read as r‖s failed; they look like DER cut to 64 octets (a middleware
        # copying DER into a 64-byte buffer): say so rather than "wrong signature".
        return ProofFailure.TRUNCATED
    if sm2.other_signer_id(spki, signature, data, other_ids, excluding=signer_id, allow_raw=True) is not None:
        return ProofFailure.SIGNER_ID
    return ProofFailure.BAD_SIGNATURE


def _truncated_der(signature: bytes) -> bool:
    try:
        sm2.decode_signature(signature)
    except sm2.Sm2Error as exc:
        return exc.failure is sm2.Sm2Failure.TRUNCATED
    return False


def verify_possession(cert: x509.Certificate, challenge: str, signature_b64: str, *,
                      signer_id: str = sm2.DEFAULT_SIGNER_ID) -> bool:
    """True when the signature is good (``check_possession`` without the reason)."""
    return check_possession(cert, challenge, signature_b64, signer_id=signer_id) is None
