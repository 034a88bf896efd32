"""Administration of accounts (issue 6): search by username, phone or ID number, detail
with masked personal data only, creation, lock/unlock, second-factor reset, the audited reveal of a
full ID number, and re-identification of a portal's pairwise ``sub``.

Personal data (PIPL Art. 28/51): listings and details show masked values only; phone
numbers and ID numbers are looked up through their keyed blind indexes, never by
decrypting rows. The full ID number leaves only through ``reveal_id_number``, which needs
``accounts.reveal`` and a stated reason; its audit event holds a keyed hash and the length
of the reason, never the reason text or the number (as ``idp.reidentification`` does)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.audit import AuditTrail
from common.clock import Clock
from common.crypto import KeyedHasher
from common.errors import ValidationError
from common.models import AuditEvent
from idp.accounts import AccountService, normalize_phone, normalize_username
from idp.errors import AccountNotFoundError
from idp.models import Account, Client, Consent
from idp.reidentification import REASON_MAX, REASON_MIN, LawfulRequest, ResolvedSubject, SubjectResolver
from realname.idnumbers import InvalidIdNumberError, parse_id_number
from realname.models import Identity, RecoveryCode
from realname.names import mask_name
from realname.service import RealnameService

from .actor import Actor, AuditedOperations
from .clients import MAX_PAGE, _cursor_value, _like_pattern
from .errors import AdminNotFoundError, ConflictError, IdentityNotFoundError, RevealReasonError, SelfAdministrationError
from .roles import Permission
from .sessions import MAX_ACCOUNT_ID, NOTHING_ENDED, EndedSessions, SessionAdminService, check_target

# Keyed-hash label of a reveal's reason in the audit event.
REVEAL_REASON_LABEL = "audit-reveal-reason"
# Audit actions that mean "this account logged in" (idp/views: password, second factor,
# certificate).
LOGIN_ACTIONS = ("login.success", "mfa.success", "certificate.login")


class SearchBy(StrEnum):
    ALL = "all"
    ACCOUNT_ID = "account_id"
    PHONE = "phone"
    ID_NUMBER = "id_number"
    USERNAME = "username"


@dataclass(frozen=True)
class AccountSummary:
    """One row of a search result: identifiers and state, the ID number masked."""

    account_id: int
    kind: str
    username: str | None
    status: str
    id_number_masked: str | None
    created_at: datetime


@dataclass(frozen=True)
class AccountPage:
    items: list[AccountSummary]
    next_cursor: str | None
    by: SearchBy


@dataclass(frozen=True)
class ConsentSummary:
    client_id: str
    client_name: str | None
    claims: tuple[str, ...]
    granted_at: datetime
    expires_at: datetime
    state: str  # active | withdrawn | expired


@dataclass(frozen=True)
class AccountDetail:
    """What an administrator sees of an account: state, assurance, factors, masked
    personal data, sessions and consents. Nothing here needs ``accounts.reveal``."""

    account_id: int
    kind: str
    username: str | None
    status: str
    level: str | None
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    masked_name: str | None
    masked_phone: str | None
    phone_verified: bool
    id_number_masked: str | None
    identity_verified_at: datetime | None
    totp_enrolled: bool
    recovery_codes_left: int
    active_sessions: int
    administrator: bool
    consents: tuple[ConsentSummary, ...]


@dataclass(frozen=True)
class LockResult:
    changed: bool
    ended: EndedSessions


def mask_phone(phone: str) -> str:
    """138****8000: the operator and the last four digits, as the citizen's pages show it."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "*" * len(phone)


def parse_reason(reason: str | None) -> str:
    """The reason as stored for hashing (NFC, trimmed). Raises ``RevealReasonError``
    unless it has ``REASON_MIN``-``REASON_MAX`` characters and no control characters."""
    text = unicodedata.normalize("NFC", (reason or "").strip())
    if not REASON_MIN <= len(text) <= REASON_MAX or any(
        unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text
    ):
        raise RevealReasonError("reason missing, too short/long or with control characters")
    return text


class AccountAdminService(AuditedOperations):
    area = "accounts"

    def __init__(self, session: Session, *, accounts: AccountService, realname: RealnameService,
                 sessions: SessionAdminService, reidentification: SubjectResolver,
                 roles_of: Callable[[int], frozenset[str]], hasher: KeyedHasher, clock: Clock,
                 audit: AuditTrail) -> None:
        super().__init__(audit)
        self._session = session
        self._accounts = accounts
        self._realname = realname
        self._sessions = sessions
        self._resolver = reidentification
        self._roles_of = roles_of
        self._hasher = hasher
        self._clock = clock

    # -- search ---------------------------------------------------------------------------

    def classify(self, query: str | None) -> SearchBy:
        """What a search term is: ``#123`` an account id, a mainland mobile number, a
        valid resident ID number (GB 11643-1999, 15 or 18 characters), else part of a
        username."""
        q = (query or "").strip()
        if not q:
            return SearchBy.ALL
        if q.startswith("#") and q[1:].isdigit() and len(q) <= 19:
            return SearchBy.ACCOUNT_ID
        if normalize_phone(q) is not None:
            return SearchBy.PHONE
        if self._id_number(q) is not None:
            return SearchBy.ID_NUMBER
        return SearchBy.USERNAME

    def _id_number(self, text: str) -> str | None:
        if len(text) not in (15, 18):
            return None
        try:
            return parse_id_number(text, today=self._clock.now().date()).number
        except InvalidIdNumberError:
            return None

    def search(self, actor: Actor, *, query: str | None = None, limit: int = 50,
               cursor: str | None = None) -> AccountPage:
        """Accounts matching ``query`` (see ``classify``), by id, keyset-paginated;
        ``limit`` 1-200. Phone and ID number go through their keyed blind indexes
        (exact match only). Needs ``accounts.read``. Raises ``ValidationError`` for a bad
        cursor or limit. Audit: ``admin.accounts.search`` for a look-up by phone or ID
        number (a search for a person by personal data), with the kind, never the value."""
        self._authorize(actor, Permission.ACCOUNTS_READ, "search")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError("limit", public_message=f"The limit is between 1 and {MAX_PAGE}.")
        q = (query or "").strip()[:200]
        by = self.classify(q)
        stmt = (select(Account, Identity.id_number_masked)
                .outerjoin(Identity, Identity.account_id == Account.id)
                .where(Account.id > _cursor_value(cursor)))
        if by is SearchBy.ACCOUNT_ID:
            stmt = stmt.where(Account.id == int(q[1:]))
        elif by is SearchBy.PHONE:
            stmt = stmt.where(Account.phone_index == self._hasher.digest("phone", normalize_phone(q) or ""))
        elif by is SearchBy.ID_NUMBER:
            stmt = stmt.where(Identity.id_index == self._realname.id_index(self._id_number(q) or ""))
        elif by is SearchBy.USERNAME:
            stmt = stmt.where(Account.username.ilike(_like_pattern(normalize_username(q)), escape="\\"))
        rows = self._session.execute(stmt.order_by(Account.id).limit(limit + 1)).all()
        more = len(rows) > limit
        items = [AccountSummary(a.id, a.kind, a.username, a.status, masked, a.created_at) for a, masked in rows[:limit]]
        if by in (SearchBy.PHONE, SearchBy.ID_NUMBER):
            self._record(actor, "search", details={"by": by.value, "found": len(items)})
        return AccountPage(items, str(items[-1].account_id) if more and items else None, by)

    # -- detail ---------------------------------------------------------------------------

    def _get(self, account_id: int) -> Account:
        if not 0 < account_id <= MAX_ACCOUNT_ID:
            raise AdminNotFoundError(f"account {account_id}", public_message="No such account.")
        try:
            return self._accounts.get(account_id)
        except AccountNotFoundError:
            raise AdminNotFoundError(f"account {account_id}", public_message="No such account.") from None

    def get(self, actor: Actor, account_id: int) -> AccountDetail:
        """One account as administrators see it (masked data only). Needs
        ``accounts.read``. Raises ``AdminNotFoundError``."""
        self._authorize(actor, Permission.ACCOUNTS_READ, "get")
        account = self._get(account_id)
        identity = self._realname.identity_of(account.id) if account.kind == "person" else None
        if identity is not None:
            masked_name: str | None = mask_name(self._realname.name_of(identity))
        else:
            name = self._accounts.name_of(account)
            masked_name = mask_name(name) if name else None
        phone = self._accounts.phone_of(account)
        codes_left = self._session.scalar(
            select(func.count()).select_from(RecoveryCode)
            .where(RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None)))
        return AccountDetail(
            account_id=account.id,
            kind=account.kind,
            username=account.username,
            status=account.status,
            level=self._realname.level_of(account.id) if account.kind == "person" else None,
            created_at=account.created_at,
            updated_at=account.updated_at,
            last_login_at=self._last_login(account.id),
            masked_name=masked_name,
            masked_phone=mask_phone(phone) if phone else None,
            phone_verified=account.phone_verified_at is not None,
            id_number_masked=identity.id_number_masked if identity else None,
            identity_verified_at=identity.verified_at if identity else None,
            totp_enrolled=self._realname.has_totp(account.id),
            recovery_codes_left=int(codes_left or 0),
            active_sessions=self._sessions.live_count(account.id),
            administrator=bool(self._roles_of(account.id)),
            consents=self._consents(account.id),
        )

    def _last_login(self, account_id: int) -> datetime | None:
        """From the audit trail (indexed by actor); None when pruned by retention."""
        return self._session.scalar(
            select(func.max(AuditEvent.at)).where(
                AuditEvent.actor == f"account:{account_id}", AuditEvent.action.in_(LOGIN_ACTIONS),
                AuditEvent.outcome == "ok"))

    def _consents(self, account_id: int) -> tuple[ConsentSummary, ...]:
        now = self._clock.now()
        rows = self._session.execute(
            select(Consent, Client.name).outerjoin(Client, Client.client_id == Consent.client_id)
            .where(Consent.account_id == account_id).order_by(Consent.granted_at.desc())
        ).all()
        out = []
        for consent, client_name in rows:
            state = "withdrawn" if consent.withdrawn_at else "expired" if consent.expires_at <= now else "active"
            out.append(ConsentSummary(consent.client_id, client_name, tuple(consent.claims or consent.scopes or ()),
                                      consent.granted_at, consent.expires_at, state))
        return tuple(out)

    # -- changes --------------------------------------------------------------------------

    def _changeable(self, actor: Actor, account_id: int, verb: str) -> Account:
        account = self._get(account_id)
        if actor.account_id == account_id:
            raise SelfAdministrationError(f"{verb} own account")
        check_target(actor, self._roles_of(account_id), self._action(verb))
        return account

    def create(self, actor: Actor, *, username: str | None, password: str, name: str | None = None,
               phone: str | None = None) -> Account:
        """Create an active person account with a password (``AccountService.create``:
        username and/or phone, the password policy). Needs ``accounts.write``. Raises
        ``ValidationError``, ``WeakPasswordError``, ``DuplicateAccountError``. Audit:
        ``admin.accounts.create`` with the names of the fields set, never their values.
        Flushes."""
        self._authorize(actor, Permission.ACCOUNTS_WRITE, "create")
        account = self._accounts.create(username=username, password=password, name=name, phone=phone)
        given = {"username": username, "name": name, "phone": phone}
        self._record(actor, "create", target=f"account:{account.id}",
                     details={"fields": sorted(k for k, v in given.items() if v)})
        return account

    def lock(self, actor: Actor, account_id: int) -> LockResult:
        """Lock the account (no logins, no token refreshes) and end all its SSO sessions,
        scheduling their back-channel logouts (send with ``sessions.deliver`` after the
        commit). Returns ``changed`` False when it was already locked. Needs
        ``accounts.write`` (superadmin for an administrator's account). Raises
        ``AdminNotFoundError``, ``SelfAdministrationError``, ``ProtectedAccountError``.
        Audit: ``admin.accounts.lock`` with the number of sessions ended. Flushes."""
        self._authorize(actor, Permission.ACCOUNTS_WRITE, "lock")
        account = self._changeable(actor, account_id, "lock")
        changed = account.status != "locked"
        if changed:
            self._accounts.set_status(account, "locked")
        # Even when already locked: a lock must leave no session behind.
        ended = self._sessions.end_all_unchecked(account_id)
        self._session.flush()
        if changed or len(ended):
            self._record(actor, "lock", target=f"account:{account_id}",
                         details={"changed": changed, "sessions": len(ended), "deliveries": len(ended.deliveries)})
        return LockResult(changed, ended if len(ended) else NOTHING_ENDED)

    def unlock(self, actor: Actor, account_id: int) -> bool:
        """Make a locked account active again. Returns False when it was active already.
        Needs ``accounts.write``. Raises ``AdminNotFoundError``, ``ConflictError`` for a
        disabled account (disabling is not a lock). Audit: ``admin.accounts.unlock``."""
        self._authorize(actor, Permission.ACCOUNTS_WRITE, "unlock")
        account = self._changeable(actor, account_id, "unlock")
        if account.status == "active":
            return False
        if account.status != "locked":
            raise ConflictError(f"status {account.status}", public_message="Only a locked account can be unlocked.")
        self._accounts.set_status(account, "active")
        self._session.flush()
        self._record(actor, "unlock", target=f"account:{account_id}")
        return True

    def reset_second_factor(self, actor: Actor, account_id: int) -> bool:
        """Remove the account's authenticator (TOTP) and recovery codes, e.g. after a
        lost phone: the person enrols again at their next login that needs it. Returns
        False when there was nothing to remove. Needs ``accounts.write`` (superadmin for
        an administrator's account). Audit: ``admin.accounts.reset_mfa``. Flushes."""
        self._authorize(actor, Permission.ACCOUNTS_WRITE, "reset_mfa")
        self._changeable(actor, account_id, "reset_mfa")
        had_totp = self._realname.has_totp(account_id)
        codes = int(self._session.scalar(
            select(func.count()).select_from(RecoveryCode).where(RecoveryCode.account_id == account_id)) or 0)
        if not had_totp and not codes:
            return False
        self._realname.reset_factors(account_id)
        self._record(actor, "reset_mfa", target=f"account:{account_id}",
                     details={"authenticator_removed": had_totp, "recovery_codes_removed": codes})
        return True

    # -- reveal and re-identification -----------------------------------------------------

    def reveal_id_number(self, actor: Actor, account_id: int, reason: str | None) -> str:
        """The full ID number of the account's verified identity. Needs
        ``accounts.reveal`` and a reason (``parse_reason``). Raises
        ``RevealReasonError`` (nothing looked up, nothing recorded),
        ``AdminNotFoundError``, ``IdentityNotFoundError``. Audit:
        ``admin.accounts.reveal`` with the keyed hash and length of the reason."""
        self._authorize(actor, Permission.ACCOUNTS_REVEAL, "reveal")
        text = parse_reason(reason)
        account = self._get(account_id)
        identity = self._realname.identity_of(account.id)
        if identity is None:
            raise IdentityNotFoundError(f"account {account_id}")
        number = self._realname.id_number_of(identity)
        self._record(actor, "reveal", target=f"account:{account_id}", details={
            "field": "id_number",
            "reason_hash": self._hasher.digest(REVEAL_REASON_LABEL, text),
            "reason_length": len(text),
        })
        return number

    def reason_hash(self, reason: str) -> str:
        """The keyed hash a reveal's audit event holds for ``reason``: lets an
        investigator holding the request document check it against the event."""
        return self._hasher.digest(REVEAL_REASON_LABEL, parse_reason(reason))

    def reidentify(self, actor: Actor, client_id: str, sub: str, *, reason: str,
                   requested_by: str) -> ResolvedSubject | None:
        """The account behind ``sub`` at ``client_id`` (``idp.reidentification``), for a
        lawful request. Needs ``accounts.reveal``. Raises
        ``ReidentificationRequestError``, ``ClientNotFoundError``,
        ``AmbiguousSubjectError``. Audit: ``subject.reidentify`` by the resolver (match
        and miss alike), with this administrator and address."""
        self._authorize(actor, Permission.ACCOUNTS_REVEAL, "reidentify")
        request = LawfulRequest.parse(reason, requested_by)
        return self._resolver.resolve(client_id, sub, request=request, actor=actor.audit_id, ip=actor.ip)


__all__ = [
    "AccountAdminService", "AccountDetail", "AccountPage", "AccountSummary", "ConsentSummary", "LockResult",
    "SearchBy", "mask_phone", "parse_reason",
]
