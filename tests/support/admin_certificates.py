"""Shared set-up for the CA and legal-person administration tests: PEM bundles and CRLs
from the test PKI (tests/support/pki.py), and legal persons bound to certificates
through the real validation and resolution path."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certificates.legal import LegalPersonIdentity
from certificates.validation import CertificateValidator
from common.db import db

from .pki import Issuer, Leaf, Province, make_crl

USCC = "91350100M000100Y43"
OTHER_USCC = "91110000600037341L"


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def bundle_pem(province: Province) -> str:
    """Root and intermediate, as an operator pastes them."""
    return pem(province.root.cert) + pem(province.intermediate.cert)


def crl_pem(issuer: Issuer, revoked: tuple[int, ...] = (), *, number: int = 1) -> str:
    der = make_crl(issuer, list(revoked), number=number)
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode("ascii")


def register(services: Any, province: Province) -> int:
    """Register a province's CA with its profile and a current (empty) CRL; commit."""
    row = services.cas.add(name=province.name, province=province.province, profile=province.profile,
                           pem_bundle=bundle_pem(province))
    services.cas.load_crl(row.id, make_crl(province.intermediate, []))
    db.session.commit()
    return int(row.id)


def certificate_login(services: Any, clock: Any, leaf: Leaf) -> LegalPersonIdentity:
    """What a certificate login does: validate against the registered CAs, resolve to a
    legal person (binding the credential); commit."""
    validated = CertificateValidator(clock).validate(leaf.der, [], services.cas.trusted(), production=False,
                                                     disabled_cas=services.cas.disabled())
    identity = services.legal.resolve(validated)
    db.session.commit()
    return identity
