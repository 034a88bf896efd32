"""Test PKI built on the fly (never checked in): CAs per "province", end-entity
certificates with identifiers in different places and encodings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
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
