"""Durable identity-provider data (SQLAlchemy 2 typed mappings only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from common.db import Base, UTCDateTime

# BIGINT on PostgreSQL for national scale, INTEGER on SQLite so it auto-increments.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Account(Base):
    """Every subject that can log in: natural persons and organisations."""

    __tablename__ = "idp_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Random, stable, never shown: the seed of public and pairwise subject identifiers.
    subject_seed: Mapped[str] = mapped_column(String(43), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="person")
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Keyed blind index of the normalised phone number (look-up without decrypting).
    phone_index: Mapped[str | None] = mapped_column(String(43), unique=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    # Possession of the phone proven by a one-time SMS code.
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    name_enc: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Client(Base):
    """A relying party (portal) registered with the provider."""

    __tablename__ = "idp_clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Keyed hash of the secret (never the secret); NULL for public clients.
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    subject_type: Mapped[str] = mapped_column(String(16), default="pairwise")
    sector_identifier: Mapped[str] = mapped_column(String(255))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    # Issue 5 release policy: claim name → {"purpose": text, "basis": "consent" |
    # "statutory"}. Empty: the claims of the client's scopes (no per-claim policy yet).
    claim_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Issue 5: set by an administrator before the policy may list sensitive claims
    # (PIPL Art. 28: sensitive personal information needs a specific purpose).
    sensitive_claims_allowed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Issue 17: a first-party administration tool of this provider, the only kind of client
    # that may obtain the ``admin`` scope (the admin API). Set and changed only by a
    # superadmin (or the operator's command line).
    first_party: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SigningKey(Base):
    """A token signing key. Lifecycle: next → active → retired (RFC 7517 key rotation with
    overlap: published before use, kept after use until what it signed has expired)."""

    __tablename__ = "idp_signing_keys"
    # At most one active and one next key per algorithm, even when several instances
    # start at once and each tries to create the first keys.
    __table_args__ = (
        Index(
            "uq_idp_signing_keys_alg_live_state",
            "alg",
            "state",
            unique=True,
            postgresql_where=text("state IN ('active', 'next')"),
            sqlite_where=text("state IN ('active', 'next')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    # The private JWK, encrypted with the data key (AES-GCM).
    private_jwk_enc: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A retired key leaves the JWKS after this instant.
    unpublish_after: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RefreshToken(Base):
    """A refresh token, stored as a keyed hash. Tokens of one grant form a family; reuse
    of a rotated token revokes the family (RFC 9700 §4.14.2)."""

    __tablename__ = "idp_refresh_tokens"
    __table_args__ = (Index("ix_idp_refresh_tokens_family_id", "family_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(43))
    client_id: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text)
    # Authentication context carried into refreshed ID tokens.
    auth_time: Mapped[int] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    sid: Mapped[str | None] = mapped_column(String(64))
    claims_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Issue 5: the claim names this grant may release (never sensitive ones: those need
    # consent at every release). NULL on rows from before per-claim consent.
    claims: Mapped[list[str] | None] = mapped_column(JSON)
    # Session context (certificate issuer, acting agent) carried into refreshed tokens.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    family_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(Base):
    """Remembered consent of one account for one client."""

    __tablename__ = "idp_consents"
    __table_args__ = (UniqueConstraint("account_id", "client_id", name="uq_idp_consents_account_client"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Issue 5: remembered per claim: what the citizen agreed to (or was told is released
    # by statutory duty) and what they unticked. NULL claims: a row from before
    # per-claim consent, read as the claims of its scopes.
    claims: Mapped[list[str] | None] = mapped_column(JSON)
    declined: Mapped[list[str] | None] = mapped_column(JSON)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LogoutDelivery(Base):
    """One back-channel logout token to deliver to one client (OIDC Back-Channel Logout
    1.0 §2.7), retried until delivered or given up."""

    __tablename__ = "idp_logout_deliveries"
    __table_args__ = (Index("ix_idp_logout_deliveries_state_next", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Disclosure(Base):
    """One release of claims to a portal (issue 5): which claim names (never values),
    why, on what legal basis, when, and under which token. Shown to the citizen."""

    __tablename__ = "idp_disclosures"
    __table_args__ = (Index("ix_idp_disclosures_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("idp_accounts.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64))
    claim_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(String(32), default="consent")
    grant_id: Mapped[str | None] = mapped_column(String(43))
    token_id: Mapped[str | None] = mapped_column(String(43))
    # The subject identifier the portal received, for the audited re-identification of a
    # pairwise ``sub`` on a lawful request (issue 5). A pseudonym, not a value.
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
