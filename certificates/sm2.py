"""SM2 signatures with SM3 (GB/T 32918.2-2016 / GM/T 0003.2, SM3 GB/T 32905-2016): the one
module that calls the national-algorithm backend, so another backend can replace it behind
the same four functions (``verify``, ``sign``, ``load_private_key``, ``decode_signature``).

Backend: tongsuopy (the Tongsuo project's fork of pyca/cryptography, built on Tongsuo,
OpenAtom's OpenSSL fork with the national algorithms). pyca/cryptography parses SM2
certificates but cannot load SM2 keys or verify SM2 signatures.

Deviation: tongsuopy's public ``verify(..., ECDSA(SM3()))`` always uses the GM/T 0009
default signer ID, and its binding exposes no ``EVP_PKEY_CTX_set1_id``. A CA's profile may
name another signer ID (issue 10), so this module computes the message digest
e = SM3(Z_A ‖ M) itself (GB/T 32918.2 §6.1 A1-A2, Z_A per §5.5) and lets the library do the
elliptic-curve work: ``EVP_PKEY_verify`` / ``EVP_PKEY_sign`` on e with an SM2 key, through
tongsuopy's cffi binding (pinned in requirements.txt). Tests cross-check every signature
verified here with OpenSSL 3's command line (pkeyutl with ``distid``), so a wrong Z cannot
pass unnoticed.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from typing import Any

from tongsuopy.backends.tongsuo.backend import backend as _backend
from tongsuopy.crypto import hashes as _hashes
from tongsuopy.crypto.asymciphers import ec as _ec
from tongsuopy.crypto.exceptions import UnsupportedAlgorithm as _UnsupportedAlgorithm
from tongsuopy.crypto.serialization import load_der_private_key, load_pem_private_key

from .der import _read_tlv, oid_octets

# OIDs (GM/T 0006-2012, GB/T 33560-2017).
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM2_CURVE = "1.2.156.10197.1.301"  # sm2p256v1; some CAs also put it as the SPKI algorithm
EC_PUBLIC_KEY = "1.2.840.10045.2.1"  # id-ecPublicKey (RFC 5480 §2.1.1)
# GM/T 0009-2012 §10 (and GB/T 35276 §5): the signer ID (user ID) when none is agreed.
DEFAULT_SIGNER_ID = "1234567812345678"
# Z_A carries ENTL_A, the ID's length in bits, in two octets (GB/T 32918.2 §5.5).
MAX_SIGNER_ID_BYTES = 8191

# The curve (GB/T 32918.5-2017 §2).
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

RAW_SIGNATURE_BYTES = 64  # r ‖ s, 32 octets each (GM/T 0009 §7.3 raw form)
_MAX_DER_SIGNATURE = 2 + 2 * (2 + 33)


class Sm2Failure(enum.StrEnum):
    """Why an SM2 signature was refused: each one is a distinct reason for the user and
    the audit trail."""

    TRUNCATED = "truncated"  # shorter than its own DER lengths say
    NOT_CANONICAL = "not_canonical"  # BER, not DER: long lengths, padded or negative INTEGERs, trailing data
    MALFORMED = "malformed"  # neither DER SEQUENCE {r, s} nor 64-byte r‖s, or r/s outside [1, n-1]
    NOT_SM2_KEY = "not_sm2_key"  # the public key is not a point on the SM2 curve
    BAD_SIGNATURE = "bad_signature"  # well-formed, does not verify


class Sm2Error(ValueError):
    def __init__(self, failure: Sm2Failure, detail: str) -> None:
        self.failure = failure
        super().__init__(detail)


# ------------------------------------------------------------------ signature encoding


def _der_integer(sig: bytes, pos: int) -> tuple[int, int]:
    # X.690 §8.3 / §10.1: an INTEGER in DER has a definite short length here (at most 33
    # octets), no superfluous leading 0x00 and, for r and s, no sign bit set.
    if pos + 2 > len(sig):
        raise Sm2Error(Sm2Failure.TRUNCATED, "signature ends inside an INTEGER header")
    if sig[pos] != 0x02:
        raise Sm2Error(Sm2Failure.MALFORMED, "signature component is not an INTEGER")
    length = sig[pos + 1]
    if length & 0x80:
        raise Sm2Error(Sm2Failure.NOT_CANONICAL, "INTEGER length in long form")
    if length == 0:
        raise Sm2Error(Sm2Failure.MALFORMED, "INTEGER of 0 octets")
    start = pos + 2
    body = sig[start : start + length]
    # The padding rules come before the 33-octet limit: a 32-octet r or s with its high
    # bit set is 33 octets in DER, and one superfluous 0x00 on it (34 octets) is BER of
    # the same value - not canonical, like the padding of a shorter value.
    if len(body) == length:
        if body[0] & 0x80:
            raise Sm2Error(Sm2Failure.NOT_CANONICAL, "negative INTEGER")
        if length > 1 and body[0] == 0 and not body[1] & 0x80:
            raise Sm2Error(Sm2Failure.NOT_CANONICAL, "INTEGER with a superfluous leading zero")
    if length > 33:
        raise Sm2Error(Sm2Failure.MALFORMED, f"INTEGER of {length} octets")
    if len(body) < length:
        raise Sm2Error(Sm2Failure.TRUNCATED, "signature ends inside an INTEGER")
    return int.from_bytes(body, "big"), start + length


def _decode_der(sig: bytes) -> tuple[int, int]:
    if len(sig) < 2:
        raise Sm2Error(Sm2Failure.TRUNCATED, "signature shorter than a SEQUENCE header")
    if sig[1] & 0x80:
        # A SEQUENCE of two INTEGERs of at most 33 octets is under 128 octets: DER
        # requires the short length form (X.690 §10.1).
        raise Sm2Error(Sm2Failure.NOT_CANONICAL, "SEQUENCE length in long form")
    if 2 + sig[1] > len(sig):
        raise Sm2Error(Sm2Failure.TRUNCATED, f"SEQUENCE says {sig[1]} octets, {len(sig) - 2} present")
    if 2 + sig[1] < len(sig):
        raise Sm2Error(Sm2Failure.NOT_CANONICAL, "octets after the signature SEQUENCE")
    r, pos = _der_integer(sig, 2)
    s, pos = _der_integer(sig, pos)
    if pos != len(sig):
        raise Sm2Error(Sm2Failure.NOT_CANONICAL, "octets after s inside the SEQUENCE")
    return r, s


def decode_signature(sig: bytes, *, allow_raw: bool = False) -> tuple[int, int]:
    """(r, s) from a DER ``SEQUENCE { INTEGER r, INTEGER s }`` (GB/T 35276 §7.3, what
    certificates, CRLs, OCSP and UKey middleware use) or, with ``allow_raw``, the 64-octet
    r ‖ s form. Raises ``Sm2Error`` with TRUNCATED, NOT_CANONICAL or MALFORMED. GB/T 32918.2
    §7.1 B1-B2: r and s must lie in [1, n-1]."""
    if not isinstance(sig, bytes | bytearray):
        raise Sm2Error(Sm2Failure.MALFORMED, "signature is not bytes")
    sig = bytes(sig)
    if allow_raw and len(sig) == RAW_SIGNATURE_BYTES and not _looks_der(sig):
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    elif sig[:1] == b"\x30":
        r, s = _decode_der(sig)
    elif not sig:
        raise Sm2Error(Sm2Failure.TRUNCATED, "empty signature")
    elif allow_raw and len(sig) < RAW_SIGNATURE_BYTES:
        raise Sm2Error(Sm2Failure.TRUNCATED, f"raw signature of {len(sig)} octets, r‖s has 64")
    else:
        raise Sm2Error(Sm2Failure.MALFORMED, "not a DER SEQUENCE {r, s}" + (" nor 64-octet r‖s" if allow_raw else ""))
    if not (1 <= r < N and 1 <= s < N):
        raise Sm2Error(Sm2Failure.MALFORMED, "r or s outside [1, n-1]")
    return r, s


def _looks_der(sig: bytes) -> bool:
    try:
        _decode_der(sig)
    except Sm2Error:
        return False
    return True


def encode_der(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        body = v.to_bytes((v.bit_length() + 8) // 8 or 1, "big")
        return b"\x02" + bytes([len(body)]) + body

    inner = integer(r) + integer(s)
    return b"\x30" + bytes([len(inner)]) + inner


def encode_raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


# ----------------------------------------------------------------------------- keys


SM2_CURVE_OCTETS = oid_octets(SM2_CURVE)
EC_PUBLIC_KEY_OCTETS = oid_octets(EC_PUBLIC_KEY)
SM2_CURVE_PARAM = b"\x06" + bytes([len(SM2_CURVE_OCTETS)]) + SM2_CURVE_OCTETS  # namedCurve sm2p256v1


def sm2_point(spki_der: bytes) -> bytes:
    """The public point (SEC 1 §2.3.3 octets) of an SM2 SubjectPublicKeyInfo. Accepts
    id-ecPublicKey with namedCurve sm2p256v1 (GB/T 33560 / GM/T 0015 §6) and the SM2 curve
    OID used as the algorithm itself, with absent, NULL or sm2p256v1 parameters (seen in
    certificates of some CAs). Raises ``Sm2Error(NOT_SM2_KEY)`` for anything else."""
    try:
        tag, body, end = _read_tlv(spki_der, 0)
        if tag != 0x30 or end != len(spki_der):
            raise ValueError("not a SEQUENCE")
        tag, alg, pos = _read_tlv(body, 0)
        if tag != 0x30:
            raise ValueError("no AlgorithmIdentifier")
        tag, oid, after = _read_tlv(alg, 0)
        params = alg[after:]
        tag_bits, bits, end = _read_tlv(body, pos)
        if tag_bits != 0x03 or end != len(body) or not bits or bits[0] != 0:
            raise ValueError("no subjectPublicKey BIT STRING")
    except ValueError as exc:
        raise Sm2Error(Sm2Failure.NOT_SM2_KEY, f"unreadable SubjectPublicKeyInfo: {exc}") from None
    if oid == EC_PUBLIC_KEY_OCTETS:
        if params != SM2_CURVE_PARAM:
            raise Sm2Error(Sm2Failure.NOT_SM2_KEY, "elliptic-curve key on a curve other than sm2p256v1")
    elif oid == SM2_CURVE_OCTETS:
        if params not in (b"", b"\x05\x00", SM2_CURVE_PARAM):
            raise Sm2Error(Sm2Failure.NOT_SM2_KEY, "SM2 algorithm with parameters naming another curve")
    else:
        raise Sm2Error(Sm2Failure.NOT_SM2_KEY, "not an elliptic-curve key")
    return bits[1:]


@functools.lru_cache(maxsize=4096)
def _public_key(point: bytes) -> Any:
    try:
        # EC_POINT_oct2point refuses points that are not on the curve.
        return _ec.EllipticCurvePublicKey.from_encoded_point(_ec.SM2(), point)
    except ValueError:
        raise Sm2Error(Sm2Failure.NOT_SM2_KEY, "the public key is not a point on the SM2 curve") from None


def _sm3(data: bytes) -> bytes:
    h = _hashes.Hash(_hashes.SM3())
    h.update(data)
    return h.finalize()


@functools.lru_cache(maxsize=4096)
def z_value(signer_id: bytes, x: int, y: int) -> bytes:
    """Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) (GB/T 32918.2 §5.5)."""
    if len(signer_id) > MAX_SIGNER_ID_BYTES:
        raise ValueError("signer ID too long")
    fields = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY, x, y))
    return _sm3((len(signer_id) * 8).to_bytes(2, "big") + signer_id + fields)


def _digest(key: Any, data: bytes, signer_id: str) -> bytes:
    numbers = key.public_numbers()
    return _sm3(z_value(signer_id.encode("utf-8"), numbers.x, numbers.y) + data)


def _pkey_ctx(evp_pkey: Any) -> Any:
    ctx = _backend._lib.EVP_PKEY_CTX_new(evp_pkey, _backend._ffi.NULL)
    _backend.openssl_assert(ctx != _backend._ffi.NULL)
    return _backend._ffi.gc(ctx, _backend._lib.EVP_PKEY_CTX_free)


# ------------------------------------------------------------------------- interface


def verify_key(spki_der: bytes) -> None:
    """Raises ``Sm2Error(NOT_SM2_KEY)`` unless ``spki_der`` holds a point on the SM2 curve."""
    _public_key(sm2_point(spki_der))


def verify(spki_der: bytes, signature: bytes, data: bytes, signer_id: str = DEFAULT_SIGNER_ID,
           *, allow_raw: bool = False) -> None:
    """Verify an SM2-with-SM3 ``signature`` over ``data`` by the key in ``spki_der`` with
    ``signer_id`` (GB/T 32918.2 §7). Returns None or raises ``Sm2Error``."""
    r, s = decode_signature(signature, allow_raw=allow_raw)
    key = _public_key(sm2_point(spki_der))
    e = _digest(key, data, signer_id)
    der = encode_der(r, s)
    ctx = _pkey_ctx(key._evp_pkey)
    _backend.openssl_assert(_backend._lib.EVP_PKEY_verify_init(ctx) == 1)
    result = _backend._lib.EVP_PKEY_verify(ctx, der, len(der), e, len(e))
    _backend._consume_errors()
    if result != 1:
        raise Sm2Error(Sm2Failure.BAD_SIGNATURE, "the SM2 signature does not verify")


def other_signer_id(spki_der: bytes, signature: bytes, data: bytes, candidates: Sequence[str], *,
                    excluding: str, allow_raw: bool = False) -> str | None:
    """The first of ``candidates`` (other than ``excluding``) the signature verifies with:
    only to name a signer-ID mismatch when verification with the expected ID failed."""
    for candidate in dict.fromkeys(candidates):
        if candidate == excluding:
            continue
        try:
            verify(spki_der, signature, data, candidate, allow_raw=allow_raw)
        except Sm2Error:
            continue
        return candidate
    return None


def load_private_key(data: bytes, password: bytes | None = None, *, pkcs12: bool = False) -> Any:
    """An SM2 private key from PEM or DER (PKCS#8, or SEC 1 ``EC PRIVATE KEY``), or from a
    PKCS#12 file (RFC 7292) with ``pkcs12``. Raises ``ValueError`` when the file holds no
    SM2 key or the password is wrong."""
    if pkcs12:
        return _load_pkcs12(data, password)
    loader = load_pem_private_key if data.lstrip().startswith(b"-----BEGIN") else load_der_private_key
    try:
        key = loader(data, password)
    except (_UnsupportedAlgorithm, TypeError) as exc:
        raise ValueError(f"not an SM2 key: {exc}") from None
    if not isinstance(getattr(key, "curve", None), _ec.SM2):
        raise ValueError("not an SM2 key")
    return key


def _load_pkcs12(data: bytes, password: bytes | None) -> Any:
    # tongsuopy has no PKCS#12 API; its binding has d2i_PKCS12_bio and PKCS12_parse.
    lib, ffi = _backend._lib, _backend._ffi
    bio = _backend._bytes_to_bio(data)
    p12 = lib.d2i_PKCS12_bio(bio.bio, ffi.NULL)
    if p12 == ffi.NULL:
        _backend._consume_errors()
        raise ValueError("not a PKCS#12 file")
    p12 = ffi.gc(p12, lib.PKCS12_free)
    pkey = ffi.new("EVP_PKEY **")
    cert = ffi.new("X509 **")
    chain = ffi.new("Cryptography_STACK_OF_X509 **")
    pw = ffi.new("char[]", password) if password else ffi.NULL
    ok = lib.PKCS12_parse(p12, pw, pkey, cert, chain)
    _backend._consume_errors()
    if cert[0] != ffi.NULL:
        lib.X509_free(cert[0])
    if chain[0] != ffi.NULL:
        for i in range(lib.sk_X509_num(chain[0])):
            lib.X509_free(lib.sk_X509_value(chain[0], i))
        lib.sk_X509_free(chain[0])
    if ok != 1 or pkey[0] == ffi.NULL:
        raise ValueError("cannot read the PKCS#12 file (wrong password, or no key)")
    evp_pkey = ffi.gc(pkey[0], lib.EVP_PKEY_free)
    if lib.EVP_PKEY_id(evp_pkey) not in (lib.EVP_PKEY_EC, lib.EVP_PKEY_SM2):
        raise ValueError("the PKCS#12 key is not an SM2 key")
    lib.EVP_PKEY_set_alias_type(evp_pkey, lib.EVP_PKEY_SM2)
    key = _backend._evp_pkey_to_private_key(evp_pkey, False)
    if not isinstance(key.curve, _ec.SM2):
        raise ValueError("the PKCS#12 key is not an SM2 key")
    return key


def sign(private_key: Any, data: bytes, signer_id: str = DEFAULT_SIGNER_ID, *, raw: bool = False) -> bytes:
    """An SM2-with-SM3 signature over ``data`` (GB/T 32918.2 §6), DER or 64-octet r ‖ s.
    For the signer tool and tests: the server never signs with SM2."""
    e = _digest(private_key.public_key(), data, signer_id)
    ctx = _pkey_ctx(private_key._evp_pkey)
    lib, ffi = _backend._lib, _backend._ffi
    _backend.openssl_assert(lib.EVP_PKEY_sign_init(ctx) == 1)
    length = ffi.new("size_t *")
    _backend.openssl_assert(lib.EVP_PKEY_sign(ctx, ffi.NULL, length, e, len(e)) == 1)
    buf = ffi.new("unsigned char[]", length[0])
    _backend.openssl_assert(lib.EVP_PKEY_sign(ctx, buf, length, e, len(e)) == 1)
    der = bytes(ffi.buffer(buf)[: length[0]])
    if not raw:
        return der
    return encode_raw(*decode_signature(der))


def public_spki(private_key: Any) -> bytes:
    """The SubjectPublicKeyInfo DER of an SM2 key (id-ecPublicKey, namedCurve sm2p256v1)."""
    from tongsuopy.crypto.serialization import Encoding, PublicFormat

    return bytes(private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
