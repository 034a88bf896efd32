"""Durable real-name data (SQLAlchemy 2 typed mappings only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
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

