"""Disclosure records (issue 5, PIPL Art. 17/23): every release of claims to a portal,
by claim name only, with purpose, legal basis, time and token id. Flushes, never commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.clock import Clock

from .models import Disclosure


class DisclosureService:
    def __init__(self, session: Session, *, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def record(
        self,
        *,
        account_id: int,
        client_id: str,
        claim_names: set[str],
        purpose: str | None = None,
        legal_basis: str = "consent",
        grant_id: str | None = None,
        token_id: str | None = None,
        subject: str | None = None,
    ) -> Disclosure:
        row = Disclosure(
            account_id=account_id,
            client_id=client_id,
            claim_names=sorted(claim_names),
            purpose=purpose,
            legal_basis=legal_basis,
            grant_id=grant_id,
            token_id=token_id,
            subject=subject,
            created_at=self._clock.now(),
        )
        self._session.add(row)
        self._session.flush()
        return row

    def history(self, account_id: int, *, client_id: str | None = None, limit: int = 500) -> list[Disclosure]:
        """Newest first, optionally for one portal."""
        query = select(Disclosure).where(Disclosure.account_id == account_id)
        if client_id:
            query = query.where(Disclosure.client_id == client_id)
        return list(self._session.scalars(query.order_by(Disclosure.created_at.desc(), Disclosure.id.desc()).limit(limit)))
