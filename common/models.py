"""Audit trail tables (DESIGN.md §7, §8): append-only events hash-chained per shard, the head
of every chain, and signed checkpoints of the heads. Written only by ``common.audit``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime

# BIGINT on PostgreSQL for national scale, INTEGER on SQLite so it auto-increments.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One audited fact. Never updated or deleted: ``hash`` covers every column but ``id``
    and includes ``prev_hash``, the hash of the previous event of the same chain."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_target", "target"),
        # Investigations by actor, and the alert queries (one action, a recent window).
        Index("ix_audit_events_actor", "actor"),
        Index("ix_audit_events_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    chain: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Pseudonymous only: "account:<id>", "client:<client_id>", "admin:<name>", "system", "anonymous".
    actor: Mapped[str] = mapped_column(String(96))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(96))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    # Keyed hash of the client IP, never the address itself (see common.audit).
    ip_hash: Mapped[str | None] = mapped_column(String(43))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last (seq, hash) of one chain: the row writers lock to append, and the witness
    that detects a deleted tail."""

    __tablename__ = "audit_chain_heads"

    chain: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """Every chain head at one time, signed (JWS) with the provider's signing key, so a
    rewrite of events and heads together is still detected."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    jws: Mapped[str] = mapped_column(Text)


class AuditChainAnchor(Base):
    """Where a pruned chain now starts (retention): the (seq, hash) of the last pruned event,
    vouched for by the signed checkpoint that recorded it. Verification starts from here
    instead of the genesis hash; the append-only trigger lets only events at or before
    the anchor be deleted."""

    __tablename__ = "audit_chain_anchors"

    chain: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    checkpoint_id: Mapped[int] = mapped_column(_BigId, ForeignKey("audit_checkpoints.id"))
    # A copy of the checkpoint's JWS: the anchor stays verifiable on its own.
    jws: Mapped[str] = mapped_column(Text)
    pruned_at: Mapped[datetime] = mapped_column(UTCDateTime)
