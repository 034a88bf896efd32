"""Remembered consent per account and client (OIDC Core §3.1.2.4)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.clock import Clock

from .catalogue import claims_for_scopes
from .models import Consent
from .release import ConsentState, is_sensitive

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

    def state(self, account_id: int, client_id: str) -> ConsentState:
        """The citizen's live, remembered decisions for this client (issue 5). A row from
        before per-claim consent (claims NULL) counts as agreement to its scopes' claims."""
        return self._state_of(self._current(account_id, client_id))

    def _state_of(self, row: Consent | None) -> ConsentState:
        if row is None or row.withdrawn_at is not None or row.expires_at <= self._clock.now():
            return ConsentState()
        agreed = set(row.claims) if row.claims is not None else claims_for_scopes(row.scopes)
        return ConsentState(agreed=frozenset(agreed), declined=frozenset(row.declined or ()))

    def grant(
        self, account_id: int, client_id: str, scopes: list[str], *, agreed: set[str], declined: set[str]
    ) -> Consent:
        """Remember the citizen's decisions on these claims, added to live earlier ones (a
        later decision on the same claim wins). Sensitive claims are never remembered
        (PIPL Art. 29: separate consent at every release). Flushes."""
        agreed = {n for n in agreed if not is_sensitive(n)}
        declined = {n for n in declined if not is_sensitive(n)} - agreed
        now = self._clock.now()
        row = self._current(account_id, client_id)
        before = self._state_of(row)
        live = row is not None and row.withdrawn_at is None and row.expires_at > now
        if row is None:
            row = Consent(account_id=account_id, client_id=client_id, scopes=[], granted_at=now)
            self._session.add(row)
        wanted = set(scopes) - _NO_CONSENT
        row.scopes = sorted(set(row.scopes) | wanted) if live else sorted(wanted)
        row.claims = sorted((before.agreed - declined) | agreed)
        row.declined = sorted((before.declined - agreed) | declined)
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
