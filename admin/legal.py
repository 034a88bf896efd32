"""Administration of legal persons (法人, issue 6): search by USCC (exact) or name
(substring), a legal person's bound certificates, agents and mandates; create a legal
person, unbind a certificate, reinstate a flagged one, grant and revoke a mandate. The rules are
``certificates.legal``'s; this module adds the permission check and the audit event
(pseudonymous ids only: no names, no agents' personal data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from certificates.errors import CredentialNotFoundError, CredentialStateError, MandateNotFoundError
from certificates.legal import LegalPersonService
from certificates.models import CertificateAuthority, Credential, LegalPerson, Mandate
from common.audit import AuditTrail
from common.clock import Clock
from common.errors import ValidationError
from idp.models import Account

from .actor import Actor, AuditedOperations
from .clients import MAX_PAGE, _cursor_value, _like_pattern
from .errors import ConflictError
from .roles import Permission


@dataclass(frozen=True)
class LegalPersonPage:
    """One page of a keyset-paginated search; ``next_cursor`` None on the last page."""

    items: list[LegalPerson]
    next_cursor: str | None


@dataclass(frozen=True)
class CredentialView:
    """A bound certificate: its CA, serial (hex) and issuer read from ``issuer_serial``
    (RFC 5280 §4.1.2.2: unique per issuer), validity and status."""

    row: Credential
    ca_name: str
    issuer: str
    serial: str
    expired: bool


@dataclass(frozen=True)
class MandateView:
    """A mandate with its state now: active, pending (not yet valid), expired or revoked.
    ``agent_username`` is the agent's login name (None for phone-only accounts)."""

    row: Mandate
    agent_username: str | None
    state: str


@dataclass(frozen=True)
class LegalPersonDetail:
    person: LegalPerson
    credentials: list[CredentialView]
    mandates: list[MandateView]


def _mandate_state(row: Mandate, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.valid_until <= now:
        return "expired"
    if row.valid_from > now:
        return "pending"
    return "active"


class LegalAdminService(AuditedOperations):
    area = "legal"

    def __init__(self, session: Session, *, legal: LegalPersonService, audit: AuditTrail, clock: Clock) -> None:
        super().__init__(audit)
        self._session = session
        self._legal = legal
        self._clock = clock

    def search(self, actor: Actor, *, query: str | None = None, limit: int = 50,
               cursor: str | None = None) -> LegalPersonPage:
        """Legal persons by id whose USCC equals ``query`` (any case) or whose name
        contains it; ``limit`` 1-200; keyset pagination. Needs ``legal.read``. Raises
        ``ValidationError`` for a bad cursor or limit."""
        self._authorize(actor, Permission.LEGAL_READ, "search")
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationError("limit", public_message=f"The limit is between 1 and {MAX_PAGE}.")
        stmt = select(LegalPerson).where(LegalPerson.id > _cursor_value(cursor))
        if query and query.strip():
            q = query.strip()[:200]
            stmt = stmt.where(or_(LegalPerson.uscc == q.upper(), LegalPerson.name.ilike(_like_pattern(q), escape="\\")))
        rows = list(self._session.scalars(stmt.order_by(LegalPerson.id).limit(limit + 1)))
        more = len(rows) > limit
        items = rows[:limit]
        return LegalPersonPage(items, str(items[-1].id) if more and items else None)

    def get(self, actor: Actor, legal_person_id: int) -> LegalPersonDetail:
        """A legal person with its credentials (any status) and mandates (newest first).
        Needs ``legal.read``. Raises ``LegalPersonNotFoundError``."""
        self._authorize(actor, Permission.LEGAL_READ, "get")
        return self._detail(legal_person_id)

    def _detail(self, legal_person_id: int) -> LegalPersonDetail:
        person = self._legal.get(legal_person_id)
        now = self._clock.now()
        creds = self._legal.credentials(person.id)
        ca_names: dict[int, str] = {ca_id: name for ca_id, name in self._session.execute(
            select(CertificateAuthority.id, CertificateAuthority.name).where(
                CertificateAuthority.id.in_({c.ca_id for c in creds})))} if creds else {}
        mandates = self._legal.mandates_of(person.id)
        agents: dict[int, str | None] = {account_id: username for account_id, username in self._session.execute(
            select(Account.id, Account.username).where(
                Account.id.in_({m.agent_account_id for m in mandates})))} if mandates else {}
        return LegalPersonDetail(
            person=person,
            credentials=[self._credential_view(c, ca_names.get(c.ca_id, f"#{c.ca_id}"), now) for c in creds],
            mandates=[MandateView(m, agents.get(m.agent_account_id), _mandate_state(m, now)) for m in mandates],
        )

    @staticmethod
    def _credential_view(row: Credential, ca_name: str, now: datetime) -> CredentialView:
        issuer, _, serial = row.issuer_serial.rpartition("|")
        return CredentialView(row, ca_name, issuer, serial, row.not_after <= now)

    def _credential(self, legal_person_id: int, credential_id: int) -> Credential:
        self._legal.get(legal_person_id)
        row = self._session.get(Credential, credential_id)
        # Addressed through its legal person: an id of another company's credential is "not found".
        if row is None or row.legal_person_id != legal_person_id:
            raise CredentialNotFoundError(f"credential {credential_id} of legal person {legal_person_id}")
        return row

    def unbind(self, actor: Actor, legal_person_id: int, credential_id: int) -> CredentialView:
        """End the binding of a certificate to its legal person (lost or compromised
        UKey, wrong company): the credential is revoked, so the certificate no longer logs
        in even while its CA vouches for it, and cannot silently bind again (deleting the
        row would let the next login re-create it). Permanent: a revoked credential is not
        reinstated. Needs ``legal.write``. Raises ``LegalPersonNotFoundError``,
        ``CredentialNotFoundError``, ``CredentialStateError`` (already revoked). Audit:
        ``admin.legal.unbind``."""
        self._authorize(actor, Permission.LEGAL_WRITE, "unbind")
        row = self._credential(legal_person_id, credential_id)
        previous = row.status
        if previous == "revoked":
            raise CredentialStateError(f"credential {credential_id} already revoked")
        self._legal.revoke_credential(credential_id, by=actor.audit_id)
        self._record(actor, "unbind", target=f"legal_person:{legal_person_id}",
                     details={"credential_id": credential_id, "ca_id": row.ca_id, "previous_status": previous})
        return self._credential_view(row, self._ca_name(row.ca_id), self._clock.now())

    def reinstate(self, actor: Actor, legal_person_id: int, credential_id: int) -> CredentialView:
        """Clear the flag of a credential (``LegalPersonService.reinstate_credential``)
        after the administrator has looked at the conflict. Needs ``legal.write``. Raises
        ``LegalPersonNotFoundError``, ``CredentialNotFoundError``, ``CredentialStateError``
        (not flagged). Audit: ``admin.legal.reinstate``."""
        self._authorize(actor, Permission.LEGAL_WRITE, "reinstate")
        row = self._credential(legal_person_id, credential_id)
        self._legal.reinstate_credential(credential_id, by=actor.audit_id)
        self._record(actor, "reinstate", target=f"legal_person:{legal_person_id}",
                     details={"credential_id": credential_id, "ca_id": row.ca_id})
        return self._credential_view(row, self._ca_name(row.ca_id), self._clock.now())

    def create(self, actor: Actor, *, uscc: str, name: str, reg_no: str | None = None, by: str) -> LegalPerson:
        """Create a legal person before its first certificate login
        (``LegalPersonService.create``); ``by`` is the administrator's name the row
        records (``created_by`` ``admin:<by>``). Needs ``legal.write``. Raises
        ``ValidationError``, ``DuplicateLegalPersonError``. Audit: ``admin.legal.create``
        (the legal person's id only, not its name). Flushes."""
        self._authorize(actor, Permission.LEGAL_WRITE, "create")
        person = self._legal.create(uscc=uscc, name=name, reg_no=reg_no, created_by=f"admin:{by}")
        self._record(actor, "create", target=f"legal_person:{person.id}", details={"reg_no": reg_no is not None})
        return person

    def grant_mandate(self, actor: Actor, *, legal_person_id: int, agent_account_id: int, scope: list[str],
                      valid_until: datetime, by: str) -> MandateView:
        """Let a natural-person account act for the legal person until ``valid_until``
        (``LegalPersonService.grant_by_admin``; ``by`` is the administrator's name the
        row records). Needs ``legal.write``. Raises ``MandateError``,
        ``LegalPersonNotFoundError``. Audit: ``admin.legal.grant_mandate`` with the
        mandate id, the agent's account id and the scope. Flushes."""
        self._authorize(actor, Permission.LEGAL_WRITE, "grant_mandate")
        row = self._legal.grant_by_admin(by, agent_account_id=agent_account_id, legal_person_id=legal_person_id,
                                         scope=scope, valid_until=valid_until)
        self._record(actor, "grant_mandate", target=f"legal_person:{legal_person_id}", details={
            "mandate_id": row.id, "agent": f"account:{agent_account_id}", "scope": list(row.scope),
            "valid_until": row.valid_until.isoformat()})
        return self._mandate_view(row)

    def revoke_mandate(self, actor: Actor, legal_person_id: int, mandate_id: int) -> MandateView:
        """End an agent's mandate now. Needs ``legal.write``. Raises
        ``LegalPersonNotFoundError``, ``MandateNotFoundError`` (none for this legal
        person), ``ConflictError`` (already revoked). Audit: ``admin.legal.revoke_mandate``."""
        self._authorize(actor, Permission.LEGAL_WRITE, "revoke_mandate")
        self._legal.get(legal_person_id)
        row = self._session.get(Mandate, mandate_id)
        if row is None or row.legal_person_id != legal_person_id:
            raise MandateNotFoundError(f"mandate {mandate_id} of legal person {legal_person_id}")
        return self._revoke(actor, row, by=actor.audit_id)

    def revoke_mandate_by_id(self, actor: Actor, mandate_id: int, *, by: str) -> MandateView:
        """``revoke_mandate`` addressed by the mandate id alone (the command line's
        ``mandate revoke ID``); ``by`` is the administrator's name the row records. Needs
        ``legal.write``. Raises ``MandateNotFoundError``, ``ConflictError`` (already
        revoked). Audit: ``admin.legal.revoke_mandate``."""
        self._authorize(actor, Permission.LEGAL_WRITE, "revoke_mandate")
        row = self._session.get(Mandate, mandate_id)
        if row is None:
            raise MandateNotFoundError(f"mandate {mandate_id}")
        return self._revoke(actor, row, by=f"admin:{by}")

    def _revoke(self, actor: Actor, row: Mandate, *, by: str) -> MandateView:
        if row.revoked_at is not None:
            raise ConflictError(f"mandate {row.id} already revoked",
                                public_message="The mandate is already revoked.")
        self._legal.revoke_mandate(row.id, by=by)
        self._record(actor, "revoke_mandate", target=f"legal_person:{row.legal_person_id}",
                     details={"mandate_id": row.id, "agent": f"account:{row.agent_account_id}"})
        return self._mandate_view(row)

    def _mandate_view(self, row: Mandate) -> MandateView:
        username = self._session.scalar(select(Account.username).where(Account.id == row.agent_account_id))
        return MandateView(row, username, _mandate_state(row, self._clock.now()))

    def _ca_name(self, ca_id: int) -> str:
        return self._session.scalar(select(CertificateAuthority.name).where(CertificateAuthority.id == ca_id)) \
            or f"#{ca_id}"
