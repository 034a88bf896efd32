"""SM2/SM3 test PKI made by the OpenSSL 3 CLI (Debian's ``openssl`` 3.0), never checked in: six
provincial CAs, company leaves with the USCC in GM/T 0015 ``1.2.156.10260.4.1.4``, CRLs (RFC 5280 §5)
and OCSP responses (RFC 6960), plus ``pkeyutl`` cross-checks of SM2 signatures (GM/T 0003.2, GM/T 0009).

Independent of the project's certificate code by construction: every key, certificate, CRL, OCSP
response and signature comes from an ``openssl`` command spelled out below (search for ``_openssl(``).
Python does no cryptography: it only splits and re-joins DER, for the three crafted certificates
whose SubjectPublicKeyInfo is edited and whose TBSCertificate is then re-signed by ``openssl pkeyutl``.

What OpenSSL 3.0.19 cannot do directly, and the workaround used here:

- ``openssl x509`` has no ``-not_before``/``-not_after`` (3.4+), so every certificate, roots included,
  is issued by ``openssl ca -startdate/-enddate`` (roots with ``-selfsign``).
- ``openssl verify -vfyopt distid:...`` attaches the ID to the target certificate only; the chain
  certificates are checked with no ID and fail. An SM2 chain is therefore verified link by link
  (``-partial_chain`` with the issuer as the only anchor), and root self-signatures with
  ``openssl_verify_certificate`` (``-check_ss_sig`` has the same limitation).
- ``openssl crl`` has no ``-vfyopt``: SM2 CRL signatures are checked by ``openssl_verify_crl``.
- Without an explicit ``distid`` OpenSSL 3.0 does *not* use the GM/T 0009 default ID: every SM2
  signature and verification here passes ``distid`` explicitly.
- ``openssl ca -gencrl -sigopt`` and ``openssl ocsp -rsigopt`` do honour ``distid`` (checked with
  ``pkeyutl``), so CRLs and OCSP responses need no re-signing. PKCS#12 with an SM2 key works.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

from tests.support.pki import seq, tlv

# GM/T 0009-2012: the signer ID (ENTL/ID in the Z value) used when the parties agreed on none.
DEFAULT_DISTID = "1234567812345678"
OTHER_DISTID = "yiwang-other-id"
P12_PASSWORD = "yiwang"

COMPANY = "Yiwang Test Trading Co., Ltd."
COMPANY2 = "Yiwang Other Industry Co., Ltd."
# GB 32100-2015: both pass certificates.uscc.check_uscc (USCC2: Beijing, organisation code 10000000-8).
USCC = "91350100M000100Y43"
USCC2 = "91110000100000008J"

OID_SM2 = "1.2.156.10197.1.301"  # GM/T 0006: SM2 (curve and key algorithm)
OID_SM2_WITH_SM3 = "1.2.156.10197.1.501"
OID_PRIME256V1 = "1.2.840.10045.3.1.7"
OID_GMT0015_ORG_CODE = "1.2.156.10260.4.1.4"  # GM/T 0015: organisation code / USCC in practice

Algorithm = Literal["rsa", "ecdsa", "sm2"]
OcspStatus = Literal["good", "revoked", "unknown"]

OPENSSL = "openssl"


class OpensslError(RuntimeError):
    """An ``openssl`` command failed for a reason other than a bad signature."""


def _openssl(*args: str | Path, stdin: bytes | None = None) -> bytes:
    argv = [OPENSSL, *(str(a) for a in args)]
    proc = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise OpensslError(f"{' '.join(argv)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


# --------------------------------------------------------------------------------------
# DER plumbing (X.690): enough to split and rebuild a certificate, never to judge one.

def _header(der: bytes, at: int = 0) -> tuple[int, int]:
    """(header length, content length) of the TLV starting at ``at``; single-byte tags only."""
    first = der[at + 1]
    if first < 0x80:
        return 2, first
    n = first & 0x7F
    return 2 + n, int.from_bytes(der[at + 2 : at + 2 + n], "big")


def der_children(der: bytes) -> list[bytes]:
    """The complete TLVs inside the constructed TLV ``der``."""
    head, length = _header(der)
    out, at, end = [], head, head + length
    while at < end:
        h, n = _header(der, at)
        out.append(der[at : at + h + n])
        at += h + n
    return out


def der_content(der: bytes) -> bytes:
    head, length = _header(der)
    return der[head : head + length]


def der_oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER TLV (X.690 §8.19)."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def _der_integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def pem_to_der(pem: bytes) -> bytes:
    lines = [ln for ln in pem.strip().splitlines() if not ln.startswith(b"-----")]
    return base64.b64decode(b"".join(lines))


def der_to_pem(der: bytes, label: str = "CERTIFICATE") -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode()]) + b"\n"


def sm2_signature_to_raw(signature: bytes) -> bytes:
    """GM/T 0009 DER ``SEQUENCE {r, s}`` → the 64-byte ``r || s`` form some UKeys return."""
    r, s = (int.from_bytes(der_content(i), "big") for i in der_children(signature))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sm2_signature_from_raw(raw: bytes) -> bytes:
    if len(raw) != 64:
        raise ValueError("an SM2 r||s signature is 64 bytes")
    return seq(_der_integer(int.from_bytes(raw[:32], "big")), _der_integer(int.from_bytes(raw[32:], "big")))


def _signed_parts(signed: bytes) -> tuple[bytes, str, bytes]:
    """(to-be-signed DER, signature algorithm OID, signature) of a Certificate, CertificateList
    (RFC 5280 §4.1, §5.1) or BasicOCSPResponse (RFC 6960 §4.2.1): all ``SEQUENCE {tbs, alg, BIT STRING}``."""
    tbs, algorithm, bits = der_children(signed)[:3]
    return tbs, _oid_dotted(der_content(der_children(algorithm)[0])), der_content(bits)[1:]


def _oid_dotted(body: bytes) -> str:
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def ocsp_basic_response(response_der: bytes) -> bytes:
    """The BasicOCSPResponse inside an OCSPResponse (RFC 6960 §4.2.1)."""
    status, response_bytes = der_children(response_der)[:2]
    if der_content(status) != b"\x00":
        raise ValueError("OCSP response status is not successful")
    _type, octets = der_children(der_content(response_bytes))
    return der_content(octets)


# --------------------------------------------------------------------------------------
# Signature parameters per signing key. SM2 always with SM3 and an explicit ID (see module doc).

_SIGNATURE_DIGEST: dict[str, str] = {
    OID_SM2_WITH_SM3: "sm3",
    "1.2.840.113549.1.1.11": "sha256",  # sha256WithRSAEncryption
    "1.2.840.10045.4.3.2": "sha256",  # ecdsa-with-SHA256
}


def _digest(algorithm: Algorithm) -> str:
    return "sm3" if algorithm == "sm2" else "sha256"


def _sigopt(flag: str, algorithm: Algorithm, distid: str) -> list[str]:
    return [flag, f"distid:{distid}"] if algorithm == "sm2" else []


# --------------------------------------------------------------------------------------
# Public cross-checks: what the tests compare the project's verdicts against.

@cache
def has_openssl_sm2() -> bool:
    """Whether this machine's ``openssl`` can make and check SM2/SM3 signatures with an ID."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            key = Path(tmp, "k.pem")
            _openssl("genpkey", "-algorithm", "SM2", "-out", key)
            sig = _openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", key,
                           "-pkeyopt", f"distid:{DEFAULT_DISTID}", stdin=b"probe")
            return _pkeyutl_verify(key.read_bytes(), sig, b"probe", digest="sm3", distid=DEFAULT_DISTID,
                                   private=True)
    except (OSError, OpensslError):
        return False


def _pkeyutl_verify(key_pem: bytes, signature: bytes, data: bytes, *, digest: str, distid: str | None,
                    private: bool = False) -> bool:
    """``openssl pkeyutl -verify -rawin``: True on a good signature, False on a bad one; any other
    failure (unreadable key, unknown option) raises so that a negative test cannot pass by accident."""
    with tempfile.TemporaryDirectory() as tmp:
        key, sig, msg = Path(tmp, "key.pem"), Path(tmp, "sig.bin"), Path(tmp, "data.bin")
        key.write_bytes(key_pem)
        sig.write_bytes(signature)
        msg.write_bytes(data)
        kind = [] if private else ["-certin"] if b"CERTIFICATE" in key_pem else ["-pubin"]
        argv = [OPENSSL, "pkeyutl", "-verify", "-rawin", "-digest", digest, *kind, "-inkey", str(key),
                "-in", str(msg), "-sigfile", str(sig)]
        if distid is not None:
            argv += ["-pkeyopt", f"distid:{distid}"]
        proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode == 0 and b"Signature Verified Successfully" in proc.stdout:
        return True
    if b"Signature Verification Failure" in proc.stdout:
        return False
    raise OpensslError(f"{' '.join(argv)}: {proc.stderr.decode(errors='replace').strip()}")


def openssl_verify(pubkey_or_cert_pem: bytes, signature: bytes, data: bytes, *, distid: str | None = DEFAULT_DISTID,
                   digest: str = "sm3", raw: bool = False) -> bool:
    """Check ``signature`` over ``data`` with ``openssl pkeyutl -verify -rawin -digest <digest>``;
    ``distid`` is passed for SM3 only (GM/T 0009 Z value), ``raw`` takes a 64-byte SM2 ``r || s``."""
    if raw:
        signature = sm2_signature_from_raw(signature)
    return _pkeyutl_verify(pubkey_or_cert_pem, signature, data, digest=digest,
                           distid=distid if digest == "sm3" else None)


def _verify_signed(signed_der: bytes, issuer_cert_pem: bytes, distid: str | None) -> bool:
    tbs, algorithm, signature = _signed_parts(signed_der)
    digest = _SIGNATURE_DIGEST[algorithm]
    return openssl_verify(issuer_cert_pem, signature, tbs, digest=digest, distid=distid)


def openssl_verify_certificate(cert_der: bytes, issuer_cert_pem: bytes, distid: str | None = DEFAULT_DISTID) -> bool:
    """The certificate's signature over its TBSCertificate (RFC 5280 §4.1.1.3) with the issuer's key;
    ``distid`` applies when the signature algorithm is SM2-with-SM3."""
    return _verify_signed(cert_der, issuer_cert_pem, distid)


def openssl_verify_crl(crl_der: bytes, issuer_cert_pem: bytes, distid: str | None = DEFAULT_DISTID) -> bool:
    """The CRL's signature over its TBSCertList (RFC 5280 §5.1.1.3)."""
    return _verify_signed(crl_der, issuer_cert_pem, distid)


def openssl_verify_ocsp_response(response_der: bytes, responder_cert_pem: bytes,
                                 distid: str | None = DEFAULT_DISTID) -> bool:
    """The BasicOCSPResponse signature over its ResponseData (RFC 6960 §4.2.1)."""
    return _verify_signed(ocsp_basic_response(response_der), responder_cert_pem, distid)


# --------------------------------------------------------------------------------------
# Result types.

@dataclass(frozen=True)
class GmCa:
    """A provincial CA: self-signed root → issuing intermediate, both made by ``openssl ca``."""

    key: str  # key in GmPki.cas
    name: str
    province: str
    algorithm: Algorithm  # the root's key and signature algorithm
    intermediate_algorithm: Algorithm
    distid: str  # signer ID of every SM2 signature this CA makes (certificates, CRLs, OCSP)
    root_pem: bytes
    intermediate_pem: bytes
    bundle_pem: bytes  # root + intermediate
    root_der: bytes
    intermediate_der: bytes
    directory: Path
    root_cert_path: Path
    root_key_path: Path
    root_config_path: Path  # `openssl ca` config of the root (issues the intermediate, root CRL)
    intermediate_cert_path: Path
    intermediate_key_path: Path
    intermediate_config_path: Path  # `openssl ca` config of the intermediate (leaves, CRL)
    bundle_path: Path


@dataclass(frozen=True)
class GmLeaf:
    name: str
    ca: str  # key in GmPki.cas
    key_algorithm: Algorithm  # the key actually in the certificate, whatever the SPKI claims
    cert_pem: bytes
    cert_der: bytes
    cert_path: Path
    key_pem: bytes  # PKCS#8, unencrypted
    key_path: Path
    p12_path: Path | None  # PKCS#12 (key + cert + intermediate), password P12_PASSWORD
    serial: int
    distid: str | None  # ID of the issuer's SM2 signature on this certificate; None if not SM2-signed
    uscc: str | None
    company: str


# --------------------------------------------------------------------------------------
# What to build.

@dataclass(frozen=True)
class _CaSpec:
    key: str
    name: str
    province: str
    root_algorithm: Algorithm
    intermediate_algorithm: Algorithm
    distid: str = DEFAULT_DISTID


_CAS = (
    _CaSpec("rsa", "Guangdong RSA", "Guangdong", "rsa", "rsa"),
    _CaSpec("ecdsa", "Jiangsu ECDSA", "Jiangsu", "ecdsa", "ecdsa"),
    _CaSpec("sm2", "Zhejiang SM2", "Zhejiang", "sm2", "sm2"),
    _CaSpec("sm2_other", "Fujian SM2", "Fujian", "sm2", "sm2", OTHER_DISTID),
    # RSA signature on an SM2 intermediate, SM2 signature on an SM2 leaf.
    _CaSpec("mixed_rsa_root", "Sichuan Mixed", "Sichuan", "rsa", "sm2"),
    # SM2 signatures throughout, on an RSA leaf key.
    _CaSpec("mixed_sm2_root", "Hubei Mixed", "Hubei", "sm2", "sm2"),
)

# AlgorithmIdentifier replacements for crafted SPKIs (RFC 5280 §4.1.2.7).
# Some Chinese CAs name the key by the SM2 OID itself, with no parameters, instead of
# id-ecPublicKey + namedCurve sm2 (the RFC 5480 form OpenSSL writes).
_SPKI_SM2_ALGORITHM = seq(der_oid(OID_SM2))
# Claims SM2 but names P-256 and carries a P-256 point: must be rejected, not verified as either.
_SPKI_SM2_MISLABEL = seq(der_oid(OID_SM2), der_oid(OID_PRIME256V1))

_Profile = Literal["signing", "encryption", "non_repudiation"]


@dataclass(frozen=True)
class _LeafSpec:
    name: str
    ca: str
    key_algorithm: Algorithm = "sm2"
    profile: _Profile = "signing"
    company: str = COMPANY
    uscc: str | None = USCC
    uscc_type: Literal["PRINTABLESTRING", "UTF8String"] = "PRINTABLESTRING"
    valid_days: tuple[int, int] = (-1, 365)  # notBefore, notAfter in days from build time
    distid: str | None = None  # None: the CA's own ID
    p12: bool = False
    spki_algorithm: bytes | None = None  # crafted: replace the SPKI AlgorithmIdentifier and re-sign


_LEAVES = (
    _LeafSpec("rsa", "rsa", "rsa", p12=True),
    _LeafSpec("ecdsa", "ecdsa", "ecdsa", uscc_type="UTF8String"),
    # The same company through another province's SM2 CA.
    _LeafSpec("sm2", "sm2", p12=True),
    # The encryption half of a UKey dual-certificate pair: same subject, own key, must not log in.
    _LeafSpec("sm2_encryption", "sm2", profile="encryption"),
    _LeafSpec("sm2_revoked", "sm2"),
    _LeafSpec("sm2_expired", "sm2", valid_days=(-400, -30)),
    _LeafSpec("sm2_not_yet_valid", "sm2", valid_days=(30, 400)),
    _LeafSpec("sm2_no_digital_signature", "sm2", profile="non_repudiation"),
    _LeafSpec("sm2_other_id", "sm2_other"),
    # Issued by pki.sm2's intermediate but signed with OTHER_DISTID: a verifier using the default
    # ID (or the CA's configured one) must reject it.
    _LeafSpec("sm2_wrong_id", "sm2", distid=OTHER_DISTID),
    _LeafSpec("mixed_sm2_leaf", "mixed_rsa_root"),
    _LeafSpec("mixed_rsa_leaf", "mixed_sm2_root", "rsa"),
    _LeafSpec("sm2_other_company", "sm2", company=COMPANY2, uscc=USCC2),
    # SPKI AlgorithmIdentifier = SM2 OID (no parameters): must still be read as an SM2 key.
    _LeafSpec("sm2_alg_oid_spki", "sm2", spki_algorithm=_SPKI_SM2_ALGORITHM),
    # SM2-with-SM3 signature by the SM2 intermediate over a P-256 key: the leaf key's algorithm
    # comes from its SPKI, never from the certificate's signature algorithm, and a P-256 key is
    # not an SM2 key; a login signature must not be checked as SM2 with it.
    _LeafSpec("sm2_wrong_curve", "sm2", "ecdsa"),
    # SPKI says SM2 (1.2.156.10197.1.301) but its parameters are prime256v1 and the point is a
    # P-256 point (not on the SM2 curve): a parser must refuse the key, not pick either curve.
    _LeafSpec("sm2_curve_mislabel", "sm2", "ecdsa", spki_algorithm=_SPKI_SM2_MISLABEL),
)

_DEFAULT_REVOKED = {"sm2": ("sm2_revoked",)}

_KEYGEN: dict[Algorithm, tuple[str, ...]] = {
    "rsa": ("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
    "ecdsa": ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
    "sm2": ("genpkey", "-algorithm", "SM2"),
}

_REQ_CONFIG = """\
# `openssl req` config: subjects come from -subj, nothing from the system openssl.cnf.
[req]
distinguished_name = dn
string_mask = utf8only
[dn]
"""

_CA_EXTENSIONS = """\
[ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_LEAF_KEY_USAGE: dict[_Profile, str] = {
    "signing": "keyUsage = critical,digitalSignature,nonRepudiation\nextendedKeyUsage = clientAuth\n",
    "encryption": "keyUsage = critical,keyEncipherment,dataEncipherment\n",
    "non_repudiation": "keyUsage = critical,nonRepudiation\nextendedKeyUsage = clientAuth\n",
}


def _leaf_extensions(spec: _LeafSpec) -> str:
    text = "[ext]\nbasicConstraints = CA:FALSE\n" + _LEAF_KEY_USAGE[spec.profile]
    text += "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n"
    if spec.uscc is not None:
        # GM/T 0015: non-critical, value a bare string (DER PrintableString or UTF8String).
        text += f"{OID_GMT0015_ORG_CODE} = ASN1:{spec.uscc_type}:{spec.uscc}\n"
    return text


def _ca_config(db: Path, cert: Path, key: Path) -> str:
    """``openssl ca`` config. Section ``issuing`` keeps the issuance database; ``status`` points at
    a scratch index rewritten before each CRL or OCSP response so callers choose what is revoked."""
    common = f"""\
serial = {db}/serial
crlnumber = {db}/crlnumber
new_certs_dir = {db}/issued
certificate = {cert}
private_key = {key}
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = yes
"""
    return f"""\
[ca]
default_ca = issuing

[issuing]
database = {db}/index.txt
{common}
[status]
database = {db}/status-index.txt
{common}
[policy_any]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[crl_ext]
authorityKeyIdentifier = keyid:always
"""


def _asn1_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def _index_time(when: datetime) -> str:
    # The `openssl ca` index uses UTCTime (YYMMDDHHMMSSZ).
    return when.astimezone(UTC).strftime("%y%m%d%H%M%SZ")


def _serial_hex(serial: int) -> str:
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def _new_serial() -> int:
    # RFC 5280 §4.1.2.2: positive, at most 20 octets; 64 random bits with the top bit set.
    return secrets.randbits(63) | (1 << 63)


def _subject(province: str, organization: str, common_name: str) -> str:
    return f"/C=CN/ST={province}/O={organization}/CN={common_name}"


# --------------------------------------------------------------------------------------
# The builder.

@dataclass
class _Level:
    """One signing level (root or intermediate): its key, certificate and `openssl ca` state."""

    algorithm: Algorithm
    distid: str
    key: Path
    cert: Path
    config: Path
    db: Path

    def ca(self, *args: str | Path) -> bytes:
        return _openssl("ca", "-batch", "-config", self.config, "-md", _digest(self.algorithm),
                        *_sigopt("-sigopt", self.algorithm, self.distid), *args)


def _make_level(directory: Path, stem: str, algorithm: Algorithm, distid: str) -> _Level:
    db = directory / f"{stem}-db"
    (db / "issued").mkdir(parents=True, exist_ok=True)
    (db / "index.txt").touch()
    (db / "crlnumber").write_text("01\n")
    level = _Level(algorithm, distid, directory / f"{stem}.key", directory / f"{stem}.pem",
                   directory / f"{stem}.cnf", db)
    level.config.write_text(_ca_config(db, level.cert, level.key))
    return level


def _request(key: Path, algorithm: Algorithm, subject: str, out: Path, req_config: Path) -> None:
    """CSR; its self-signature only proves possession to `openssl ca` (always the default ID)."""
    _openssl("req", "-new", "-config", req_config, "-key", key, "-subj", subject, f"-{_digest(algorithm)}",
             *_sigopt("-sigopt", algorithm, DEFAULT_DISTID), "-out", out)


def _issue(issuer: _Level, csr: Path, csr_algorithm: Algorithm, out: Path, extensions: Path, *,
           not_before: datetime, not_after: datetime, selfsign: bool = False, distid: str | None = None) -> int:
    """``openssl ca`` with a chosen serial; returns it."""
    serial = _new_serial()
    (issuer.db / "serial").write_text(_serial_hex(serial) + "\n")
    signer = issuer if distid is None else _Level(issuer.algorithm, distid, issuer.key, issuer.cert,
                                                  issuer.config, issuer.db)
    signer.ca("-in", csr, "-out", out, "-notext", "-startdate", _asn1_time(not_before),
              "-enddate", _asn1_time(not_after), "-extfile", extensions, "-extensions", "ext",
              *_sigopt("-vfyopt", csr_algorithm, DEFAULT_DISTID), *(["-selfsign"] if selfsign else []))
    return serial


def _pkeyutl_sign(key: Path, algorithm: Algorithm, data: bytes, distid: str) -> bytes:
    """``openssl pkeyutl -sign -rawin``: SM3 + ID for SM2, SHA-256 (PKCS#1 v1.5 / ECDSA) otherwise."""
    return _openssl("pkeyutl", "-sign", "-rawin", "-digest", _digest(algorithm), "-inkey", key,
                    *_sigopt("-pkeyopt", algorithm, distid), stdin=data)


def _replace_spki_algorithm(cert_der: bytes, algorithm: bytes, issuer: _Level, distid: str) -> bytes:
    """Swap the SPKI AlgorithmIdentifier of an openssl-made certificate and re-sign its TBS with
    the issuer's key (``pkeyutl``), keeping serial, names, extensions and the key bits."""
    tbs, signature_algorithm, _signature = der_children(cert_der)
    fields = der_children(tbs)
    # RFC 5280 §4.1: [0] version, serialNumber, signature, issuer, validity, subject, SPKI, ...
    _old, key_bits = der_children(fields[6])
    fields[6] = seq(algorithm, key_bits)
    new_tbs = seq(*fields)
    signature = _pkeyutl_sign(issuer.key, issuer.algorithm, new_tbs, distid)
    return seq(new_tbs, signature_algorithm, tlv(0x03, b"\x00" + signature))


def _parallel(jobs: Iterable[tuple[Algorithm, Path]]) -> None:
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for future in [pool.submit(_openssl, *_KEYGEN[alg], "-out", path) for alg, path in jobs]:
            future.result()


@dataclass
class GmPki:
    """The built PKI. ``cas`` and ``leaves`` are keyed by the names in this module's tables."""

    directory: Path
    created_at: datetime
    cas: dict[str, GmCa]
    leaves: dict[str, GmLeaf]
    _levels: dict[tuple[str, str], _Level] = field(repr=False)

    @property
    def rsa(self) -> GmCa:
        return self.cas["rsa"]

    @property
    def ecdsa(self) -> GmCa:
        return self.cas["ecdsa"]

    @property
    def sm2(self) -> GmCa:
        return self.cas["sm2"]

    @property
    def sm2_other(self) -> GmCa:
        return self.cas["sm2_other"]

    @property
    def mixed_rsa_root(self) -> GmCa:
        return self.cas["mixed_rsa_root"]

    @property
    def mixed_sm2_root(self) -> GmCa:
        return self.cas["mixed_sm2_root"]

    def issue_leaves(self, ca_key: str, count: int, *, prefix: str = "extra",
                     companies: Sequence[tuple[str, str]] = ()) -> list[GmLeaf]:
        """``count`` more valid signing leaves from ``ca_key``'s issuing intermediate (key of the
        intermediate's algorithm), named ``<prefix>-<ca key>-<i>`` and added to ``leaves``; leaf i
        is for ``companies[i]`` (name, USCC) when given, else for ``COMPANY``. Benchmarks cycle
        through distinct certificates (no cache keyed by one certificate flatters the figures) and
        log in as distinct companies."""
        spec = next(s for s in _CAS if s.key == ca_key)
        issuer = self._levels[ca_key, "intermediate"]
        directory = self.cas[ca_key].directory / "leaves"
        if companies and len(companies) < count:
            raise ValueError(f"{count} leaves need {count} companies, {len(companies)} given")
        named = list(companies) or [(COMPANY, USCC)] * count
        specs = [_LeafSpec(f"{prefix}-{ca_key}-{i}", ca_key, issuer.algorithm, company=named[i][0], uscc=named[i][1])
                 for i in range(count)]
        _parallel([(s.key_algorithm, directory / f"{s.name}.key") for s in specs])
        made = [_build_leaf(s, spec, issuer, directory, self.directory / "req.cnf", self.created_at) for s in specs]
        self.leaves.update((leaf.name, leaf) for leaf in made)
        return made

    def default_revoked(self, ca_key: str) -> list[int]:
        """Serials on this CA's CRL unless a test says otherwise (pki.sm2: "sm2_revoked")."""
        return [self.leaves[n].serial for n in _DEFAULT_REVOKED.get(ca_key, ())]

    # RFC 5280 §5 ---------------------------------------------------------------------
    def crl(self, ca_key: str, revoked: Sequence[int] | None = None, *, number: int | None = None,
            next_update_days: int = 7) -> bytes:
        """DER CRL of the CA's issuing intermediate listing ``revoked`` (default: ``default_revoked``),
        by ``openssl ca -gencrl``. ``number`` sets the CRL number; None continues the CA's own
        counter (1, 2, ...). A negative ``next_update_days`` makes a CRL that is already stale."""
        if revoked is None:
            revoked = self.default_revoked(ca_key)
        return self._crl(self._levels[ca_key, "intermediate"], revoked, number, next_update_days)

    def root_crl(self, ca_key: str, revoked: Sequence[int] = (), *, number: int | None = None,
                 next_update_days: int = 30) -> bytes:
        """DER CRL signed by the root (it covers the intermediate; empty by default)."""
        return self._crl(self._levels[ca_key, "root"], revoked, number, next_update_days)

    def _crl(self, level: _Level, revoked: Sequence[int], number: int | None, next_update_days: int) -> bytes:
        now = datetime.now(UTC)
        next_update = now + timedelta(days=next_update_days)
        this_update = min(now - timedelta(minutes=5), next_update - timedelta(days=1))
        self._write_status_index(level, [(serial, now - timedelta(hours=1)) for serial in revoked])
        if number is not None:
            (level.db / "crlnumber").write_text(_serial_hex(number) + "\n")
        out = level.db / "crl.pem"
        level.ca("-name", "status", "-gencrl", "-crlexts", "crl_ext", "-crl_lastupdate", _asn1_time(this_update),
                 "-crl_nextupdate", _asn1_time(next_update), "-out", out)
        return pem_to_der(out.read_bytes())

    # RFC 6960 ------------------------------------------------------------------------
    def ocsp_request(self, ca_key: str, leaf_name: str, *, nonce: bool = False, digest: str = "sha1") -> bytes:
        """DER OCSPRequest (RFC 6960 §4.1.1) for the leaf's serial with a CertID naming ``ca_key``'s
        intermediate as issuer (pass another CA to ask about the right serial under the wrong
        issuer), hashed with ``digest``, by ``openssl ocsp``."""
        leaf = self.leaves[leaf_name]
        issuer = self._levels[ca_key, "intermediate"]
        out = issuer.db / "ocsp-request.der"
        # The digest option must precede -serial.
        _openssl("ocsp", "-issuer", issuer.cert, f"-{digest}", "-serial", f"0x{_serial_hex(leaf.serial)}",
                 "-nonce" if nonce else "-no_nonce", "-reqout", out)
        return out.read_bytes()

    def ocsp_response(self, ca_key: str, leaf_name: str, *, status: OcspStatus | None = None,
                      request: bytes | None = None, next_update_days: int = 1) -> bytes:
        """DER OCSPResponse about ``leaf_name`` signed by ``ca_key``'s issuing intermediate as its own
        responder (RFC 6960 §4.2.2.2, responder = issuer when ``ca_key`` is the leaf's CA). ``status``
        defaults to revoked for leaves on the CA's default CRL, else good. ``request`` answers that
        DER request (its CertID and nonce) instead of a fresh one from ``ocsp_request``."""
        leaf = self.leaves[leaf_name]
        if status is None:
            status = "revoked" if leaf.serial in self.default_revoked(leaf.ca) else "good"
        issuer = self._levels[leaf.ca, "intermediate"]
        signer = self._levels[ca_key, "intermediate"]
        now = datetime.now(UTC)
        entries = [] if status == "unknown" else [(leaf.serial, now - timedelta(hours=1) if status == "revoked" else None)]
        self._write_status_index(issuer, entries)
        request_path = issuer.db / "ocsp-request.der"
        request_path.write_bytes(request if request is not None else self.ocsp_request(leaf.ca, leaf_name))
        out = issuer.db / "ocsp-response.der"
        _openssl("ocsp", "-index", issuer.db / "status-index.txt", "-CA", issuer.cert, "-rsigner", signer.cert,
                 "-rkey", signer.key, "-rmd", _digest(signer.algorithm),
                 *_sigopt("-rsigopt", signer.algorithm, signer.distid),
                 "-ndays", str(next_update_days), "-reqin", request_path, "-respout", out)
        return out.read_bytes()

    @staticmethod
    def _write_status_index(level: _Level, entries: Sequence[tuple[int, datetime | None]]) -> None:
        # `openssl ca` index: state, expiry, revocation[,reason], serial, file, subject (tab-separated).
        far = _index_time(datetime.now(UTC) + timedelta(days=3650))
        lines = []
        for serial, revoked_at in entries:
            state, when = ("V", "") if revoked_at is None else ("R", _index_time(revoked_at) + ",keyCompromise")
            lines.append(f"{state}\t{far}\t{when}\t{_serial_hex(serial)}\tunknown\t/CN=serial {serial}\n")
        (level.db / "status-index.txt").write_text("".join(lines))

    # Signatures ----------------------------------------------------------------------
    def sign(self, leaf_name: str, data: bytes, *, distid: str = DEFAULT_DISTID, raw: bool = False) -> bytes:
        """The leaf key's signature over ``data`` (``openssl pkeyutl -sign -rawin``): SM2 with SM3 and
        ``distid`` (DER, or 64-byte ``r || s`` when ``raw``), RSA PKCS#1 v1.5 / ECDSA with SHA-256."""
        leaf = self.leaves[leaf_name]
        signature = _pkeyutl_sign(leaf.key_path, leaf.key_algorithm, data, distid)
        if raw:
            if leaf.key_algorithm != "sm2":
                raise ValueError("raw signatures are an SM2 form")
            return sm2_signature_to_raw(signature)
        return signature


def build_gm_pki(directory: Path) -> GmPki:
    """Build every CA and leaf under ``directory`` (created if missing) with the OpenSSL 3 CLI:
    ``<directory>/<ca key>/{root,intermediate}.{key,pem,cnf}``, ``bundle.pem`` and ``leaves/<name>.*``.
    About 1 s on 2 cores (the five RSA-2048 keys dominate). Raises ``OpensslError``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).replace(microsecond=0)
    req_config = directory / "req.cnf"
    req_config.write_text(_REQ_CONFIG)
    ca_dirs = {spec.key: directory / spec.key for spec in _CAS}
    for path in ca_dirs.values():
        (path / "leaves").mkdir(parents=True, exist_ok=True)

    keys: list[tuple[Algorithm, Path]] = []
    for spec in _CAS:
        keys += [(spec.root_algorithm, ca_dirs[spec.key] / "root.key"),
                 (spec.intermediate_algorithm, ca_dirs[spec.key] / "intermediate.key")]
    keys += [(leaf.key_algorithm, ca_dirs[leaf.ca] / "leaves" / f"{leaf.name}.key") for leaf in _LEAVES]
    # Every certificate gets its own key: distinct SPKIs keep credential binding tests honest;
    # the RSA keys dominate the build time, hence the pool.
    _parallel(keys)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(_build_ca, spec, ca_dirs[spec.key], req_config, now) for spec in _CAS]
        results = [f.result() for f in futures]

    cas: dict[str, GmCa] = {}
    leaves: dict[str, GmLeaf] = {}
    levels: dict[tuple[str, str], _Level] = {}
    for ca, ca_levels, ca_leaves in results:
        cas[ca.key] = ca
        levels[ca.key, "root"], levels[ca.key, "intermediate"] = ca_levels
        leaves.update(ca_leaves)
    ordered = {spec.name: leaves[spec.name] for spec in _LEAVES}
    return GmPki(directory, now, cas, ordered, levels)


def _build_ca(spec: _CaSpec, directory: Path, req_config: Path,
              now: datetime) -> tuple[GmCa, tuple[_Level, _Level], dict[str, GmLeaf]]:
    root = _make_level(directory, "root", spec.root_algorithm, spec.distid)
    intermediate = _make_level(directory, "intermediate", spec.intermediate_algorithm, spec.distid)
    extensions = directory / "ca-ext.cnf"
    extensions.write_text(_CA_EXTENSIONS)

    root_csr = directory / "root.csr"
    _request(root.key, root.algorithm, _subject(spec.province, spec.name, f"{spec.name} Root"), root_csr, req_config)
    # CAs started years ago, so an expired leaf's whole validity lies inside its issuer's.
    _issue(root, root_csr, root.algorithm, root.cert, extensions, selfsign=True,
           not_before=now - timedelta(days=5 * 365), not_after=now + timedelta(days=20 * 365))

    intermediate_csr = directory / "intermediate.csr"
    _request(intermediate.key, intermediate.algorithm,
             _subject(spec.province, spec.name, f"{spec.name} Issuing CA"), intermediate_csr, req_config)
    _issue(root, intermediate_csr, intermediate.algorithm, intermediate.cert, extensions,
           not_before=now - timedelta(days=4 * 365), not_after=now + timedelta(days=10 * 365))

    bundle = directory / "bundle.pem"
    bundle.write_bytes(root.cert.read_bytes() + intermediate.cert.read_bytes())
    ca = GmCa(
        key=spec.key, name=spec.name, province=spec.province, algorithm=spec.root_algorithm,
        intermediate_algorithm=spec.intermediate_algorithm, distid=spec.distid,
        root_pem=root.cert.read_bytes(), intermediate_pem=intermediate.cert.read_bytes(),
        bundle_pem=bundle.read_bytes(), root_der=pem_to_der(root.cert.read_bytes()),
        intermediate_der=pem_to_der(intermediate.cert.read_bytes()), directory=directory,
        root_cert_path=root.cert, root_key_path=root.key, root_config_path=root.config,
        intermediate_cert_path=intermediate.cert, intermediate_key_path=intermediate.key,
        intermediate_config_path=intermediate.config, bundle_path=bundle,
    )
    leaves = {leaf.name: _build_leaf(leaf, spec, intermediate, directory / "leaves", req_config, now)
              for leaf in _LEAVES if leaf.ca == spec.key}
    return ca, (root, intermediate), leaves


def _build_leaf(spec: _LeafSpec, ca: _CaSpec, issuer: _Level, directory: Path, req_config: Path,
                now: datetime) -> GmLeaf:
    stem = directory / spec.name
    key, csr, pem, ext = (stem.with_suffix(s) for s in (".key", ".csr", ".pem", ".ext"))
    ext.write_text(_leaf_extensions(spec))
    _request(key, spec.key_algorithm, _subject(ca.province, spec.company, spec.company), csr, req_config)
    distid = spec.distid or issuer.distid
    issued = stem.with_suffix(".issued.pem") if spec.spki_algorithm else pem
    serial = _issue(issuer, csr, spec.key_algorithm, issued, ext, distid=distid,
                    not_before=now + timedelta(days=spec.valid_days[0]),
                    not_after=now + timedelta(days=spec.valid_days[1]))
    der = pem_to_der(issued.read_bytes())
    if spec.spki_algorithm is not None:
        der = _replace_spki_algorithm(der, spec.spki_algorithm, issuer, distid)
        pem.write_bytes(der_to_pem(der))
    stem.with_suffix(".der").write_bytes(der)

    p12: Path | None = None
    if spec.p12:
        p12 = stem.with_suffix(".p12")
        _openssl("pkcs12", "-export", "-inkey", key, "-in", pem, "-certfile", issuer.cert, "-name", spec.name,
                 "-passout", f"pass:{P12_PASSWORD}", "-out", p12)
    return GmLeaf(
        name=spec.name, ca=spec.ca, key_algorithm=spec.key_algorithm, cert_pem=pem.read_bytes(), cert_der=der,
        cert_path=pem, key_pem=key.read_bytes(), key_path=key, p12_path=p12, serial=serial,
        distid=distid if issuer.algorithm == "sm2" else None, uscc=spec.uscc, company=spec.company,
    )
