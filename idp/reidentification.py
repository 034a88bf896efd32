"""Re-identification of a portal's ``sub`` for a lawful request (issue 5, DESIGN.md §5):
administrators only, every call audited. OIDC Core §8: a pairwise ``sub`` is opaque to
the portal; only this provider, holding the key, can map it back to an account.

Disclosure rows record the ``sub`` each portal received; they narrow the search but prove
nothing (a row can be wrong or planted), so every candidate is confirmed by recomputing
its ``sub`` at the client with ``subject_for``, exactly as the token endpoint does."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.audit import AuditTrail
from common.crypto import KeyedHasher, constant_time_equals

from .errors import AmbiguousSubjectError, ClientNotFoundError, ReidentificationRequestError
from .models import Account, Client, Disclosure
from .subjects import subject_for

ACTION = "subject.reidentify"
REASON_MIN, REASON_MAX = 10, 500
REQUESTER_MIN, REQUESTER_MAX = 3, 120
# Keyed-hash label of the reason text in the audit event (see ``SubjectResolver``).
REASON_LABEL = "audit-reidentify-reason"
# Every ``sub`` this provider issues is a KeyedHasher digest: 32 bytes in base64url.
_SUB = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Policy: free text stored in the audit trail must not carry a phone or ID number
# (11+ digits covers mainland mobiles, 15- and 18-character resident ID numbers).
_DIGIT_RUN = re.compile(r"\d{11,}")


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text)


@dataclass(frozen=True)
class LawfulRequest:
    """Why an administrator re-identifies someone (PIPL Art. 13(3) statutory duty, or a
    request from a competent authority) and who asked, given with every call."""

    reason: str
    requested_by: str

    @classmethod
    def parse(cls, reason: str, requested_by: str) -> LawfulRequest:
        """Normalise (NFC, trimmed) and validate; raises ``ReidentificationRequestError``."""
        reason, requested_by = _clean(reason or ""), _clean(requested_by or "")
        if not REASON_MIN <= len(reason) <= REASON_MAX or _has_control(reason):
            raise ReidentificationRequestError(
                "reason length", public_message=f"A reason of {REASON_MIN}-{REASON_MAX} characters is required.")
        if not REQUESTER_MIN <= len(requested_by) <= REQUESTER_MAX or _has_control(requested_by):
            raise ReidentificationRequestError(
                "requester length",
                public_message=f"The requester reference (authority/case) has {REQUESTER_MIN}-{REQUESTER_MAX} "
                               "characters.")
        if _DIGIT_RUN.search(requested_by):
            raise ReidentificationRequestError(
                "requester digits",
                public_message="The requester reference must name the authority and case, not a phone or ID number.")
        return cls(reason=reason, requested_by=requested_by)


def validate_subject(sub: str) -> str:
    """The ``sub`` as given, if this provider could have issued it; else
    ``ReidentificationRequestError`` (no look-up is made for malformed input)."""
    sub = (sub or "").strip()
    if not _SUB.match(sub) or _DIGIT_RUN.search(sub):
        raise ReidentificationRequestError(
            "sub shape", public_message="The sub must be a subject identifier issued by this provider (43 characters).")
    return sub


@dataclass(frozen=True)
class ResolvedSubject:
    """The account behind a ``sub``: identifiers and assurance only, never the name, ID
    number or phone number (those stay behind their own audited reveal)."""

    account_id: int
    kind: str  # "person" or "organization" (a legal person: its agents share its sub)
    username: str | None
    status: str
    # Identity-proofing level of a natural person (DESIGN.md §5); None for organisations.
    realname_level: str | None
    # Portals the sub was recorded as released to (one sector, or every public client).
    disclosed_to: tuple[str, ...]
    first_disclosed_at: datetime
    last_disclosed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "kind": self.kind,
            "username": self.username,
            "status": self.status,
            "realname_level": self.realname_level,
            "disclosed_to": list(self.disclosed_to),
            "first_disclosed_at": self.first_disclosed_at.isoformat(),
            "last_disclosed_at": self.last_disclosed_at.isoformat(),
        }


class SubjectResolver:
    """Maps a client's ``sub`` back to an account, for administrators acting on a lawful
    request. Flushes nothing, never commits; queues one audit event per call.

    Audit privacy: the event keeps the ``sub`` (a pseudonym), the requester reference and
    a keyed hash and length of the reason, never the reason text. The reason may run to
    500 characters (the trail takes 200) and often names the person concerned; the
    permanent, never-erased trail must not hold that (common/audit.py). The requester
    keeps the request document; ``reason_hash`` ties it to the event, and anyone holding
    the index key can check a presented text against it.
    """

    def __init__(
        self,
        session: Session,
        *,
        find_client: Callable[[str], Client | None],
        hasher: KeyedHasher,
        level_of: Callable[[int], str],
        audit: AuditTrail,
    ) -> None:
        self._session = session
        self._find_client = find_client
        self._hasher = hasher
        self._level_of = level_of
        self._audit = audit

    def reason_hash(self, request: LawfulRequest) -> str:
        return self._hasher.digest(REASON_LABEL, request.reason)

    def resolve(self, client_id: str, sub: str, *, request: LawfulRequest, actor: str,
                ip: str | None = None) -> ResolvedSubject | None:
        """The account whose ``sub`` at ``client_id`` is ``sub``, or None.

        ``actor`` is the pseudonymous administrator (``admin:cli``, ``account:<id>``);
        ``ip`` where the request came from (stored keyed-hashed by the audit trail).
        Raises ``ClientNotFoundError`` for an unknown client and
        ``ReidentificationRequestError`` for a malformed ``sub``; neither writes anything.
        Otherwise queues one ``subject.reidentify`` audit event, for a match (target the
        account) and for a miss alike. A disabled client is still resolved: a lawful
        request may concern releases made before it was switched off.
        """
        sub = validate_subject(sub)
        client = self._find_client(client_id) if client_id and len(client_id) <= 64 else None
        if client is None:
            raise ClientNotFoundError("re-identification for an unknown client")
        found = self._confirmed(client, sub)
        self._audit.record(
            ACTION,
            actor=actor,
            target=f"account:{found.account_id}" if found else None,
            client_id=client.client_id,
            ip=ip,
            reason="lawful_request",
            details={
                "sub": sub,
                "matched": found is not None,
                "requested_by": request.requested_by,
                "reason_hash": self.reason_hash(request),
                "reason_length": len(request.reason),
            },
        )
        return found

    def _confirmed(self, client: Client, sub: str) -> ResolvedSubject | None:
        """Candidates from the disclosure index, kept only if ``sub`` recomputes for them."""
        rows = self._session.execute(
            select(Disclosure.account_id, Disclosure.client_id, func.min(Disclosure.created_at),
                   func.max(Disclosure.created_at))
            .where(Disclosure.subject == sub)
            .group_by(Disclosure.account_id, Disclosure.client_id)
        ).all()
        if not rows:
            return None
        accounts = self._session.scalars(select(Account).where(Account.id.in_({r[0] for r in rows})))
        # OIDC Core §8.1: the sub depends on the client's subject type and sector only, so
        # a sub released at another client of the same sector is the same person here.
        matches = [a for a in accounts
                   if constant_time_equals(subject_for(self._hasher, a.subject_seed, client.subject_type,
                                                       client.sector_identifier), sub)]
        if not matches:
            return None
        if len(matches) > 1:
            raise AmbiguousSubjectError(f"{len(matches)} accounts recompute to one sub at {client.client_id}")
        account = matches[0]
        mine = [r for r in rows if r[0] == account.id]
        return ResolvedSubject(
            account_id=account.id,
            kind=account.kind,
            username=account.username,
            status=account.status,
            realname_level=self._level_of(account.id) if account.kind == "person" else None,
            disclosed_to=tuple(sorted({r[1] for r in mine})),
            first_disclosed_at=min(r[2] for r in mine),
            last_disclosed_at=max(r[3] for r in mine),
        )
