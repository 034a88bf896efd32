"""Signature checks on certificates, CRLs and OCSP responses whatever the algorithm of each
link (issue 10): RSA and ECDSA through pyca/cryptography, SM2-with-SM3 through
``certificates.sm2``. Also reads SubjectPublicKeyInfo straight from the DER, because
cryptography cannot load SM2 keys. Pure: no Flask, no database.

An SM2 signature is verified with the signer ID of the CA registration the path leads to
(its profile's ``sm2_signer_id``, GM/T 0009 default otherwise). When it fails, the other
signer IDs the caller knows of are tried, only to tell "signed with another signer ID"
from "wrong signature" (both are refusals).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from . import sm2
from .der import DerError, _read_tlv

_SM2_FAMILY = frozenset({sm2.SM2_WITH_SM3, "1.2.156.10197.1.502", "1.2.156.10197.1.503"})

# Names shown to operators (console, API, CLI) for the algorithms of each link.
_SIGNATURE_NAMES = {
    sm2.SM2_WITH_SM3: "SM2-with-SM3",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "Ed25519",
}


class SignatureCheckError(Exception):
    """A signature was refused. ``code`` is one of "bad_signature", "sm2_signer_id",
    "sm2_wrong_curve" (the values of the matching ``RejectionReason`` members)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class PublicKeyInfo:
    der: bytes  # the whole SubjectPublicKeyInfo
    algorithm: bytes  # the algorithm OID's content octets
    parameters: bytes | None  # the parameters TLV, if any
    key_bits: bytes  # subjectPublicKey BIT STRING content, without the unused-bits octet


@functools.lru_cache(maxsize=8192)
def public_key_info(cert: x509.Certificate) -> PublicKeyInfo:
    """The certificate's SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), read from the
    TBSCertificate so it works for keys cryptography cannot load. Raises ``DerError``."""
    _, body, _ = _read_tlv(cert.tbs_certificate_bytes, 0)
    pos = index = 0
    # TBSCertificate: [0] version?, serial, signature, issuer, validity, subject, spki, ...
    while pos < len(body):
        start = pos
        tag, value, pos = _read_tlv(body, pos)
        if tag == 0xA0 and index == 0:
            continue
        index += 1
        if index == 6:
            _, alg, alg_end = _read_tlv(value, 0)
            _, oid, after = _read_tlv(alg, 0)
            _, bits, _ = _read_tlv(value, alg_end)
            return PublicKeyInfo(body[start:pos], oid, alg[after:] or None, bits[1:])
    raise DerError("no subjectPublicKeyInfo")


def _declares_sm2(info: PublicKeyInfo) -> bool:
    return info.algorithm == sm2.SM2_CURVE_OCTETS or (
        info.algorithm == sm2.EC_PUBLIC_KEY_OCTETS and info.parameters == sm2.SM2_CURVE_PARAM)


def declares_sm2_key(cert: x509.Certificate) -> bool:
    """The certificate says its key is an SM2 key: id-ecPublicKey on sm2p256v1, or the SM2
    OID as the key algorithm (GM/T 0015 §6; some CAs)."""
    try:
        return _declares_sm2(public_key_info(cert))
    except DerError:
        return False


def is_sm2_signed(oid: x509.ObjectIdentifier) -> bool:
    return oid.dotted_string in _SM2_FAMILY


def check_public_key(cert: x509.Certificate) -> None:
    """A certificate that declares an SM2 key must hold a point on the SM2 curve, with
    parameters that name that curve. Raises ``SignatureCheckError("sm2_wrong_curve")``."""
    try:
        info = public_key_info(cert)
    except DerError as exc:
        raise SignatureCheckError("bad_signature", f"unreadable subjectPublicKeyInfo: {exc}") from None
    if not _declares_sm2(info):
        return
    try:
        sm2.verify_key(info.der)
    except sm2.Sm2Error as exc:
        raise SignatureCheckError("sm2_wrong_curve", f"{cert.subject.rfc4514_string()}: {exc}") from None


def key_hash_sha1(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING value: the OCSP ResponderID byKey (RFC 6960
    §4.2.1) and RFC 5280 §4.2.1.2 method (1) key identifier."""
    return hashlib.sha1(public_key_info(cert).key_bits).digest()  # noqa: S324 - an identifier, RFC 6960


def same_key(a: x509.Certificate, b: x509.Certificate) -> bool:
    return public_key_info(a).der == public_key_info(b).der


def describe_key(cert: x509.Certificate) -> str:
    """"SM2", "RSA-2048", "EC P-256", ... for operators."""
    if declares_sm2_key(cert):
        return "SM2"
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return "unknown"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "EC P-256", "secp384r1": "EC P-384", "secp521r1": "EC P-521"}.get(
            key.curve.name, f"EC {key.curve.name}")
    return type(key).__name__.removesuffix("PublicKey").lstrip("_")


def describe_signature(oid: x509.ObjectIdentifier) -> str:
    return _SIGNATURE_NAMES.get(oid.dotted_string, oid.dotted_string)


def describe(cert: x509.Certificate) -> str:
    """"SM2 key, SM2-with-SM3 signature" style summary of one link."""
    return f"{describe_key(cert)} / {describe_signature(cert.signature_algorithm_oid)}"


# -------------------------------------------------------------------------- verifying


def _sm2(signer: x509.Certificate, signature: bytes, data: bytes, oid: str, signer_id: str,
         other_ids: Sequence[str], what: str) -> None:
    name = signer.subject.rfc4514_string()
    if oid != sm2.SM2_WITH_SM3:
        raise SignatureCheckError("bad_signature", f"{what}: unsupported SM2 signature algorithm {oid}")
    if not declares_sm2_key(signer):
        raise SignatureCheckError("sm2_wrong_curve", f"{what} is SM2-with-SM3 but the key of {name} is not an SM2 key")
    spki = public_key_info(signer).der
    try:
        sm2.verify(spki, signature, data, signer_id)
        return
    except sm2.Sm2Error as exc:
        if exc.failure is sm2.Sm2Failure.NOT_SM2_KEY:
            raise SignatureCheckError("sm2_wrong_curve", f"{what}: key of {name}: {exc}") from None
        if exc.failure is not sm2.Sm2Failure.BAD_SIGNATURE:
            raise SignatureCheckError("bad_signature", f"{what}: {exc.failure.value} SM2 signature: {exc}") from None
    other = sm2.other_signer_id(spki, signature, data, other_ids, excluding=signer_id)
    if other is not None:
        raise SignatureCheckError("sm2_signer_id", f"{what} verifies with SM2 signer ID {other!r}, not with "
                                  f"{signer_id!r} that the CA's profile names")
    raise SignatureCheckError("bad_signature", f"{what}: the SM2 signature of {name} does not verify")


def verify_certificate(child: x509.Certificate, parent: x509.Certificate, *, signer_id: str = sm2.DEFAULT_SIGNER_ID,
                       other_ids: Sequence[str] = ()) -> None:
    """RFC 5280 §6.1.3 (a)(1): ``child`` is signed by ``parent``'s key (and names it as
    issuer, §6.1.3 (a)(4)). Raises ``SignatureCheckError``."""
    what = f"{child.subject.rfc4514_string()} issued by {parent.subject.rfc4514_string()}"
    if child.issuer != parent.subject:
        raise SignatureCheckError("bad_signature", f"{what}: issuer name differs")
    if is_sm2_signed(child.signature_algorithm_oid):
        _sm2(parent, child.signature, child.tbs_certificate_bytes, child.signature_algorithm_oid.dotted_string,
             signer_id, other_ids, f"the certificate {child.subject.rfc4514_string()}")
        return
    if declares_sm2_key(parent):
        raise SignatureCheckError("sm2_wrong_curve", f"{what}: {describe_signature(child.signature_algorithm_oid)} "
                                  "signature from an SM2 key")
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureCheckError("bad_signature", f"{what}: {exc.__class__.__name__} {exc}") from None


def verify_crl(crl: x509.CertificateRevocationList, signer: x509.Certificate, *,
               signer_id: str = sm2.DEFAULT_SIGNER_ID, other_ids: Sequence[str] = ()) -> None:
    """RFC 5280 §6.3.3 (g): the CRL is signed by ``signer``. Raises ``SignatureCheckError``."""
    if is_sm2_signed(crl.signature_algorithm_oid):
        _sm2(signer, crl.signature, crl.tbs_certlist_bytes, crl.signature_algorithm_oid.dotted_string,
             signer_id, other_ids, f"the CRL of {crl.issuer.rfc4514_string()}")
        return
    if declares_sm2_key(signer):
        raise SignatureCheckError("sm2_wrong_curve", "a non-SM2 CRL signature from an SM2 key")
    try:
        ok = crl.is_signature_valid(signer.public_key())  # type: ignore[arg-type]
    except (UnsupportedAlgorithm, TypeError, ValueError) as exc:
        raise SignatureCheckError("bad_signature", f"CRL signature: {exc}") from None
    if not ok:
        raise SignatureCheckError("bad_signature", "the CRL signature does not verify")


def verify_ocsp(resp: ocsp.OCSPResponse, responder: x509.Certificate, *, signer_id: str = sm2.DEFAULT_SIGNER_ID,
                other_ids: Sequence[str] = ()) -> None:
    """RFC 6960 §3.2 (2): the response is signed by ``responder``. Raises
    ``SignatureCheckError``."""
    oid = resp.signature_algorithm_oid
    if is_sm2_signed(oid):
        _sm2(responder, resp.signature, resp.tbs_response_bytes, oid.dotted_string, signer_id, other_ids,
             "the OCSP response")
        return
    if declares_sm2_key(responder):
        raise SignatureCheckError("sm2_wrong_curve", "a non-SM2 OCSP signature from an SM2 key")
    try:
        key = responder.public_key()
        algorithm = resp.signature_hash_algorithm
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), algorithm)
        else:
            raise SignatureCheckError("bad_signature", "unsupported OCSP signature algorithm")
    except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError) as exc:
        raise SignatureCheckError("bad_signature", f"the OCSP response signature does not verify: {exc}") from None
