"""Durable real-name data (SQLAlchemy 2 typed mappings only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class RegistryRecord(Base):
    """One person in the local copy of the authoritative population registry, read by the
    ``local`` adapter. Only keyed hashes are stored: the table answers "does this name
    belong to this number?" without holding either in the clear."""

    __tablename__ = "realname_registry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Keyed blind index of the normalised 18-character number (unique: one person).
    id_index: Mapped[str] = mapped_column(String(43), unique=True)
    # Keyed hash of the normalised name, bound to the number (label "registry-name").
    name_hash: Mapped[str] = mapped_column(String(43))
    # Keyed hash of the carrier-registered mobile number (三要素), optional.
    phone_hash: Mapped[str | None] = mapped_column(String(43))
    deceased: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)



class Identity(Base):
    """The verified identity of one natural-person account. Created only when the
    registry confirms the name and number, so nobody can squat someone else's number
    with a wrong name (the blind index is unique: one person, one account)."""

    __tablename__ = "realname_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"), unique=True)
    id_index: Mapped[str] = mapped_column(String(43), unique=True)
    id_number_enc: Mapped[str] = mapped_column(Text)
    name_enc: Mapped[str] = mapped_column(Text)
    # Masked number kept apart so listings never need to decrypt (issue 3: never whole).
    id_number_masked: Mapped[str] = mapped_column(String(18))
    # cn-l1 (registry match) or higher proofing (cn-l3 face match from an external service).
    proofing_level: Mapped[str] = mapped_column(String(8))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_by: Mapped[str] = mapped_column(String(32))
    # 三要素: the registry/carrier confirmed that the account's phone belongs to this person.
    phone_bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TotpFactor(Base):
    """A TOTP authenticator enrolled by an account (secret encrypted at rest)."""

    __tablename__ = "realname_totp_factors"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"), unique=True)
    secret_enc: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """One single-use recovery code (keyed hash), issued with TOTP enrollment."""

    __tablename__ = "realname_recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(43), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
