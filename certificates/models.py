"""Durable legal-person data: the CA trust registry, legal persons, their certificate
credentials and mandates (SQLAlchemy 2 typed mappings only; DESIGN.md §8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class CertificateAuthority(Base):
    """A registered CA: its anchors and intermediates, how its certificates map to a legal
    person, and its revocation state. "一证通用": every CA row is treated alike; only the
    mapping profile says where its certificates put the identifier."""

    __tablename__ = "certificates_cas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    province: Mapped[str] = mapped_column(String(64))
    # Roots and intermediates as one PEM bundle (the operator's input, kept verbatim).
    pem_bundle: Mapped[str] = mapped_column(Text)
    # SHA-256 (hex) over the sorted DER of the roots: the same anchors twice would make
    # two CAs claim one certificate.
    anchors_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # certificates.mapping.MappingProfile as JSON data.
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    crl_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    ocsp_url: Mapped[str | None] = mapped_column(Text)
    # The last CRL accepted (uploaded or fetched), verified against this CA's keys.
    crl_der: Mapped[bytes | None] = mapped_column(LargeBinary)
    crl_this_update: Mapped[datetime | None] = mapped_column(UTCDateTime)
    crl_next_update: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # RFC 5280 §5.2.3: up to 20 octets, so kept as a decimal string.
    crl_number: Mapped[str | None] = mapped_column(String(50))
    # When that CRL was loaded (upload or `crl refresh`): the operator's "last refresh".
    crl_loaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LegalPerson(Base):
    """A legal person (法人), keyed by its USCC (GB 32100-2015). It is also an
    ``idp_accounts`` row of kind "organization", so portals get a pairwise ``sub`` for it
    like for anyone (DESIGN.md §5)."""

    __tablename__ = "certificates_legal_persons"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Aliases old certificates carry: GB 11714 organisation code (= USCC positions 9-17)
    # and the 15-digit business registration number.
    org_code: Mapped[str] = mapped_column(String(9), index=True)
    reg_no: Mapped[str | None] = mapped_column(String(15), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # "certificate:<credential id>" or "admin:<name>".
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Credential(Base):
    """One certificate bound to a legal person. A company may hold many, from different
    CAs. ``status``: active, revoked (by an administrator) or flagged (the certificate
    or its key was seen mapping to another legal person)."""

    __tablename__ = "certificates_credentials"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # f"{issuer DN RFC 4514}|{serial hex}": RFC 5280 §4.1.2.2, unique per issuer.
    issuer_serial: Mapped[str] = mapped_column(String(1024), unique=True)
    # base64url SHA-256 over the SubjectPublicKeyInfo; renewals may keep the key, so not
    # unique, but one key never serves two legal persons.
    spki_sha256: Mapped[str] = mapped_column(String(43), index=True)
    ca_id: Mapped[int] = mapped_column(ForeignKey("certificates_cas.id"), index=True)
    legal_person_id: Mapped[int] = mapped_column(ForeignKey("certificates_legal_persons.id"), index=True)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    # "SM2 / SM2-with-SM3", "RSA-2048 / sha256WithRSAEncryption": the key and how the CA
    # signed it (issue 10); None for credentials bound before migration 0014 until used.
    algorithm: Mapped[str | None] = mapped_column(String(96))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Why a credential was flagged or revoked (no personal data: identifiers of legal
    # persons are public registration data).
    status_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Mandate(Base):
    """A natural-person account (经办人) may act for a legal person within ``scope``
    between ``valid_from`` and ``valid_until`` until revoked."""

    __tablename__ = "certificates_mandates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"), index=True)
    legal_person_id: Mapped[int] = mapped_column(
        ForeignKey("certificates_legal_persons.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # "admin:<name>" or "certificate:<credential id>".
    granted_by: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(128))
