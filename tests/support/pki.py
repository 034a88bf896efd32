"""Test PKI built on the fly (never checked in): CAs per "province", end-entity
certificates with identifiers in different places and encodings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + value


def printable(text: str) -> bytes:
    return tlv(0x13, text.encode("ascii"))


def utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode("utf-8"))


def ia5(text: str) -> bytes:
    return tlv(0x16, text.encode("ascii"))


def bmp(text: str) -> bytes:
    return tlv(0x1E, text.encode("utf-16-be"))


def set_of(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(items))


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def ctx(n: int, inner: bytes, constructed: bool = True) -> bytes:
    return tlv((0xA0 if constructed else 0x80) | n, inner)


@dataclass
class Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def make_ca(common_name: str, province: str) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, province),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name + " Root"),
    ])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Issuer(name, key, cert)


def make_leaf(
    issuer: Issuer,
    *,
    org_name: str = "示例科技有限公司",
    subject_extra: list[x509.NameAttribute] | None = None,
    extensions: list[tuple[str, bytes]] | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
        x509.NameAttribute(NameOID.COMMON_NAME, org_name),
        *(subject_extra or []),
    ])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer.name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=365))
    )
    for oid, value in extensions or []:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
        )
    return builder.sign(issuer.key, hashes.SHA256())


# --------------------------------------------------------------------------------------
# Provincial hierarchies for validation (RFC 5280 §6.1): root → intermediate → leaf, with
# the faults the tests need (expired, not yet valid, wrong key usage, no CA flag, SM2).

SIGNING = x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                        data_encipherment=False, key_agreement=False, key_cert_sign=False,
                        crl_sign=False, encipher_only=False, decipher_only=False)
# The encryption half of a UKey's dual certificates: must never log in.
ENCRYPTION = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                           data_encipherment=True, key_agreement=False, key_cert_sign=False,
                           crl_sign=False, encipher_only=False, decipher_only=False)
CA_USAGE = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                         crl_sign=True, encipher_only=False, decipher_only=False)


def make_sub_ca(
    parent: Issuer,
    common_name: str,
    *,
    now: datetime | None = None,
    ca: bool | None = True,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None = CA_USAGE,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Issuer:
    """An intermediate CA under ``parent``. ``ca=None`` omits basicConstraints."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.now(UTC)
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(parent.name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=1825))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()), critical=False)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                                        critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    return Issuer(name, key, builder.sign(parent.key, hashes.SHA256()))


@dataclass
class Leaf:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def issue_leaf(
    issuer: Issuer,
    *,
    now: datetime | None = None,
    org_name: str = "示例科技有限公司",
    subject_extra: list[x509.NameAttribute] | None = None,
    extensions: list[tuple[str, bytes]] | None = None,
    key_usage: x509.KeyUsage | None = SIGNING,
    ekus: list[x509.ObjectIdentifier] | None = None,
    ca_flag: bool | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    serial: int | None = None,
    critical_oids: tuple[str, ...] = (),
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Leaf:
    """An end-entity certificate with the holder's key. ``extensions`` are private
    (identifier) extensions as (OID, DER value); ``critical_oids`` marks some critical."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = now or datetime.now(UTC)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
        x509.NameAttribute(NameOID.COMMON_NAME, org_name),
        *(subject_extra or []),
    ])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(issuer.name).public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(hours=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if ekus is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if ca_flag is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca_flag, path_length=None), critical=True)
    for oid, value in extensions or []:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=oid in critical_oids
        )
    return Leaf(builder.sign(issuer.key, hashes.SHA256()), key)


def make_crl(
    issuer: Issuer,
    revoked: list[int] | tuple[int, ...] = (),
    *,
    now: datetime | None = None,
    next_update: datetime | None = None,
    number: int = 1,
    signer_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A DER CRL from ``issuer`` listing ``revoked`` serial numbers (RFC 5280 §5).
    ``signer_key`` signs with another key (a forged CRL)."""
    now = now or datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.name)
        .last_update(now - timedelta(minutes=10))
        .next_update(next_update or now + timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - timedelta(hours=1)).build()
        )
    return builder.sign(signer_key or issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def make_large_crl(issuer: Issuer, count: int, *, now: datetime | None = None, extra: tuple[int, ...] = (),
                   number: int = 1) -> bytes:
    """A CRL with ``count`` entries (serials 10**6 ..), built from DER pieces: the
    builder API takes minutes for 100k entries, this takes well under a second."""
    now = now or datetime.now(UTC)

    def utc_time(moment: datetime) -> bytes:
        return tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))

    def integer(n: int) -> bytes:
        raw = n.to_bytes((n.bit_length() + 8) // 8, "big")
        return tlv(0x02, raw)

    def big(tag: int, value: bytes) -> bytes:
        n = len(value)
        if n < 0x10000:
            return tlv(tag, value)
        return bytes([tag, 0x83]) + n.to_bytes(3, "big") + value

    revoked_at = utc_time(now - timedelta(hours=1))
    entries = b"".join(seq(integer(s), revoked_at) for s in (*range(10**6, 10**6 + count), *extra))
    alg = seq(tlv(0x06, bytes.fromhex("2a8648ce3d040302")))  # ecdsa-with-SHA256
    crl_number = seq(tlv(0x06, bytes.fromhex("551d14")), tlv(0x04, integer(number)))
    tbs = big(0x30, b"".join([
        integer(1),  # v2
        alg,
        issuer.name.public_bytes(),
        utc_time(now - timedelta(minutes=10)),
        utc_time(now + timedelta(days=7)),
        big(0x30, entries),
        ctx(0, seq(crl_number)),
    ]))
    signature = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return big(0x30, tbs + alg + tlv(0x03, b"\x00" + signature))


# OIDs rewritten in place (same length) to make SM2 certificates cryptography can parse
# but not verify: ecdsa-with-SHA256 → SM2-with-SM3 (1.2.156.10197.1.501), prime256v1 →
# sm2p256v1 (1.2.156.10197.1.301).
_ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")
_SM2_SM3 = bytes.fromhex("06082a811ccf55018375")
_P256 = bytes.fromhex("06082a8648ce3d030107")
_SM2_CURVE = bytes.fromhex("06082a811ccf5501822d")


def sm2_variant(cert: x509.Certificate, *, signature: bool = True, key: bool = True) -> bytes:
    """The DER of ``cert`` relabelled as SM2/SM3-signed and/or with an SM2 public key."""
    der = cert.public_bytes(serialization.Encoding.DER)
    if signature:
        der = der.replace(_ECDSA_SHA256, _SM2_SM3)
    if key:
        der = der.replace(_P256, _SM2_CURVE)
    return der


@dataclass
class Province:
    """A provincial CA: root, an intermediate that issues end-entity certificates, and
    where that CA puts the legal-person identifier (``place`` builds the extensions /
    subject attributes for an identifier value, ``profile`` reads it back)."""

    name: str
    province: str
    root: Issuer
    intermediate: Issuer
    profile: Any  # certificates.mapping.MappingProfile
    place: Any  # Callable[[str], dict[str, Any]] → kwargs for issue_leaf

    def issue(self, identifier: str, **kwargs: Any) -> Leaf:
        return issue_leaf(self.intermediate, **{**self.place(identifier), **kwargs})

    def trusted(self, ca_id: int, **kwargs: Any) -> Any:
        from certificates.trust import TrustedCa

        return TrustedCa(ca_id=ca_id, name=self.name, province=self.province, roots=(self.root.cert,),
                         intermediates=(self.intermediate.cert,), profile=self.profile, **kwargs)


# A CA-private extension (an enterprise arc) used by the third province's profile.
PRIVATE_OID = "1.3.6.1.4.1.55555.7.1"


def three_provinces(now: datetime | None = None) -> list[Province]:
    """Three provincial CAs placing and encoding the identifier differently:
    Fujian - GM/T 0015-2023 extension 1.2.156.10260.4.4, PrintableString (default profile);
    Guangdong - 1.2.156.10260.4.1.4 as SET { UTF8String } (default profile);
    Beijing - a CA-private extension, [0] { IA5String "USCC:<id>" }, with its own profile."""
    from certificates.mapping import DEFAULT_PROFILE, MappingProfile, Source

    now = now or datetime.now(UTC)
    provinces = []
    for name, province, place, profile in [
        ("Fujian CA", "Fujian", lambda v: {"extensions": [("1.2.156.10260.4.4", printable(v))]}, DEFAULT_PROFILE),
        ("Guangdong CA", "Guangdong", lambda v: {"extensions": [("1.2.156.10260.4.1.4", set_of(utf8(v)))]},
         DEFAULT_PROFILE),
        ("Beijing CA", "Beijing", lambda v: {"extensions": [(PRIVATE_OID, ctx(0, ia5("USCC:" + v)))]},
         MappingProfile(sources=(Source("extension", PRIVATE_OID, ("uscc", "org_code"), None, ("USCC:",)),))),
    ]:
        root = make_ca(name, province)
        sub = make_sub_ca(root, f"{name} Issuing CA 1", now=now)
        provinces.append(Province(name, province, root, sub, profile, place))
    return provinces
