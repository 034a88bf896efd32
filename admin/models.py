"""Administrator role assignments (SQLAlchemy 2 typed mappings only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UTCDateTime

_BigId = BigInteger().with_variant(Integer(), "sqlite")


class AdminRole(Base):
    """One role held by one account. An account with no row is not an administrator."""

    __tablename__ = "admin_roles"
    __table_args__ = (UniqueConstraint("account_id", "role"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    # Pseudonymous actor who granted it ("admin:cli", "account:<id>").
    granted_by: Mapped[str] = mapped_column(String(96))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
