"""Remembered consent per account and client (OIDC Core §3.1.2.4)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.clock import Clock

from .models import Consent

# Scopes that need no consent: they release nothing about the person by themselves.
_NO_CONSENT = {"openid", "offline_access"}


class ConsentService:
    def __init__(self, session: Session, *, clock: Clock, ttl_days: int) -> None:
        self._session = session
        self._clock = clock
        self._ttl = timedelta(days=ttl_days)

    def _current(self, account_id: int, client_id: str) -> Consent | None:
        return self._session.scalars(
            select(Consent).where(Consent.account_id == account_id, Consent.client_id == client_id)
        ).first()

    def check_granted(self, account_id: int, client_id: str, scopes: list[str]) -> bool:
        """True when a live consent covers every scope that needs one."""
        needed = set(scopes) - _NO_CONSENT
        if not needed:
            return True
        row = self._current(account_id, client_id)
        if row is None or row.withdrawn_at is not None or row.expires_at <= self._clock.now():
            return False
        return needed <= set(row.scopes)

    def grant(self, account_id: int, client_id: str, scopes: list[str]) -> Consent:
        """Record consent for these scopes (added to what was granted before). Flushes."""
        now = self._clock.now()
        row = self._current(account_id, client_id)
        wanted = sorted(set(scopes) - _NO_CONSENT)
        if row is None:
            row = Consent(account_id=account_id, client_id=client_id, scopes=wanted, granted_at=now)
            self._session.add(row)
        elif row.withdrawn_at is None and row.expires_at > now:
            row.scopes = sorted(set(row.scopes) | set(wanted))
        else:
            row.scopes = wanted
        row.granted_at = now
        row.expires_at = now + self._ttl
        row.withdrawn_at = None
        self._session.flush()
        return row

    def active(self, account_id: int) -> list[Consent]:
        """The account's live consents (portals it shares data with), newest first."""
        now = self._clock.now()
        return list(self._session.scalars(
            select(Consent)
            .where(Consent.account_id == account_id, Consent.withdrawn_at.is_(None), Consent.expires_at > now)
            .order_by(Consent.granted_at.desc())
        ))

    def withdraw(self, account_id: int, client_id: str) -> bool:
        row = self._current(account_id, client_id)
        if row is None or row.withdrawn_at is not None:
            return False
        row.withdrawn_at = self._clock.now()
        self._session.flush()
        return True
