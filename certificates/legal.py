"""Legal persons (法人) and their credentials and mandates: a validated certificate is
resolved to one legal person keyed by its USCC (GB 32100-2015), whatever CA issued it
("一证通用"); natural-person accounts act for a legal person under a mandate (经办人),
which tokens later express as an ``act`` claim (RFC 8693 §4.1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.clock import Clock
from common.db import insert_unique
from common.errors import ValidationError

from .errors import (
    CredentialNotFoundError,
    CredentialStateError,
    DuplicateLegalPersonError,
    LegalPersonNotFoundError,
    MandateError,
    MandateNotFoundError,
)
from .models import Credential, LegalPerson, Mandate
from .signatures import describe
from .trust import CertificateRejectedError, RejectionReason, ValidatedCertificate
from .uscc import InvalidUsccError, parse_uscc

# Policy: a mandate is never open-ended; three years covers a typical agency contract
# and forces a periodic review.
MAX_MANDATE_DAYS = 3 * 366
_SCOPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_REG_NO = re.compile(r"^\d{15}$")
_ADMIN = re.compile(r"^[^\s:][^\r\n]{0,99}$")


@dataclass(frozen=True)
class LegalPersonIdentity:
    """Who logged in with a certificate: the legal person and the credential used."""

    legal_person_id: int
    account_id: int
    uscc: str
    name: str
    credential_id: int
    created: bool  # the legal person was created by this login


@dataclass(frozen=True)
class ActingFor:
    """An agent's active mandate: the legal person it may act for, and within what."""

    mandate_id: int
    legal_person_id: int
    legal_person_account_id: int
    uscc: str
    name: str
    scope: tuple[str, ...]
    valid_until: datetime


class LegalPersonService:
    """Resolve certificates to legal persons, bind credentials, manage mandates. Flushes,
    never commits. ``create_account`` makes the ``idp_accounts`` row (kind
    "organization") of a new legal person and returns its id: idp wires it, because
    certificates/ must not import idp (DESIGN.md §2)."""

    def __init__(self, session: Session, *, clock: Clock, create_account: Callable[[], int] | None = None) -> None:
        self._session = session
        self._clock = clock
        self._create_account = create_account

    # -- legal persons ------------------------------------------------------------------

    def create(self, *, uscc: str, name: str, reg_no: str | None = None, created_by: str) -> LegalPerson:
        """Create a legal person (administrator, or first certificate login). Raises
        ``ValidationError`` (USCC, name, registration number), ``DuplicateLegalPersonError``.
        Adds a ``certificates_legal_persons`` row and, through ``create_account``, an
        ``idp_accounts`` row."""
        try:
            code = parse_uscc(uscc)
        except InvalidUsccError as exc:
            raise ValidationError(f"uscc {exc.reason}", public_message="The USCC is not valid (GB 32100-2015).") from None
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise ValidationError("bad name", public_message="A legal person's name has 1-200 characters.")
        if reg_no is not None and not _REG_NO.match(reg_no):
            raise ValidationError("bad reg_no", public_message="A registration number has 15 digits.")
        if self._create_account is None:
            raise RuntimeError("LegalPersonService needs create_account to create legal persons")
        now = self._clock.now()
        try:
            # One savepoint for the account and the legal person: a concurrent creation of
            # the same USCC leaves no orphan account behind.
            with self._session.begin_nested():
                row = LegalPerson(
                    uscc=code.code,
                    name=name,
                    org_code=code.organization_code,
                    reg_no=reg_no,
                    account_id=self._create_account(),
                    status="active",
                    created_by=created_by,
                    created_at=now,
                    updated_at=now,
                )
                self._session.add(row)
                self._session.flush()
        except IntegrityError as exc:
            raise DuplicateLegalPersonError("unique constraint") from exc
        return row

    def get(self, legal_person_id: int) -> LegalPerson:
        row = self._session.get(LegalPerson, legal_person_id)
        if row is None:
            raise LegalPersonNotFoundError(f"legal person {legal_person_id}")
        return row

    def find_by_uscc(self, uscc: str) -> LegalPerson | None:
        return self._session.scalars(select(LegalPerson).where(LegalPerson.uscc == uscc.strip().upper())).first()

    def find_by_account(self, account_id: int) -> LegalPerson | None:
        return self._session.scalars(select(LegalPerson).where(LegalPerson.account_id == account_id)).first()

    def credentials(self, legal_person_id: int) -> list[Credential]:
        return list(self._session.scalars(
            select(Credential).where(Credential.legal_person_id == legal_person_id).order_by(Credential.id)))

    # -- certificates -------------------------------------------------------------------

    def resolve(self, certificate: ValidatedCertificate) -> LegalPersonIdentity:
        """Map a validated certificate to its legal person and bind it as a credential.

        USCC → that legal person, created on first login; organisation code → the one
        legal person whose USCC contains it (GB 32100-2015 positions 9-17); registration
        number → the legal person with that alias. Raises ``CertificateRejectedError``:
        NO_IDENTIFIER / MALFORMED_IDENTIFIER (mapping failed), AMBIGUOUS_ORG_CODE (alias
        matches no or several legal persons), IDENTIFIER_CONFLICT (the certificate or its
        key is bound to another legal person, or was flagged), REVOKED (credential revoked
        by an administrator).

        Side effects: may add a legal person (+ account) and a credential; updates
        ``last_used_at``. On IDENTIFIER_CONFLICT the credentials involved are flagged and
        flushed *before* the error is raised: the caller commits them (the refusal itself
        is what must be recorded) instead of rolling back.
        """
        mapped = certificate.mapping.identifier
        if mapped is None:
            reason = (RejectionReason.MALFORMED_IDENTIFIER if certificate.mapping.malformed
                      else RejectionReason.NO_IDENTIFIER)
            raise CertificateRejectedError(reason, "; ".join(certificate.mapping.trail))
        target: LegalPerson | None
        if mapped.kind == "uscc":
            uscc = mapped.value
            target = self.find_by_uscc(uscc)
        else:
            target = self._by_alias(mapped.kind, mapped.value)
            uscc = target.uscc

        known = list(self._session.scalars(
            select(Credential).where(or_(Credential.issuer_serial == certificate.issuer_serial,
                                         Credential.spki_sha256 == certificate.spki_sha256))
        ))
        conflicting = [c for c in known if target is None or c.legal_person_id != target.id]
        if conflicting:
            now = self._clock.now()
            for cred in conflicting:
                # A revoked credential stays revoked: flagging it would let a later
                # reinstatement (of a flag) undo an administrator's revocation.
                if cred.status == "revoked":
                    continue
                cred.status = "flagged"
                cred.status_detail = (f"{now.isoformat()}: certificate {certificate.issuer_serial} "
                                      f"(CA {certificate.ca.ca_id}) maps to {uscc}")
            self._session.flush()
            raise CertificateRejectedError(
                RejectionReason.IDENTIFIER_CONFLICT,
                f"{certificate.issuer_serial} maps to {uscc}; credentials {[c.id for c in conflicting]} "
                "are bound to another legal person and were flagged",
            )
        same = next((c for c in known if c.issuer_serial == certificate.issuer_serial), None)
        if same is not None and same.status == "revoked":
            raise CertificateRejectedError(RejectionReason.REVOKED, f"credential {same.id} revoked by an administrator")
        flagged = [c for c in known if c.status == "flagged"]
        if flagged:
            # A flag is cleared by an administrator only, never by logging in again.
            raise CertificateRejectedError(RejectionReason.IDENTIFIER_CONFLICT,
                                           f"credentials {[c.id for c in flagged]} are flagged")

        created = False
        if target is None:
            # created_by names the credential once it exists (below).
            target = self.create(uscc=uscc, name=self._name_of(certificate, uscc), created_by="certificate")
            created = True
        now = self._clock.now()
        if same is None:
            same = Credential(
                issuer_serial=certificate.issuer_serial,
                spki_sha256=certificate.spki_sha256,
                ca_id=certificate.ca.ca_id,
                legal_person_id=target.id,
                not_before=certificate.not_before,
                not_after=certificate.not_after,
                algorithm=describe(certificate.certificate)[:96],
                status="active",
                created_at=now,
            )
            try:
                with self._session.begin_nested():
                    self._session.add(same)
                    self._session.flush()
            except IntegrityError:
                # A concurrent first login with the same certificate bound it already.
                same = self._session.scalars(
                    select(Credential).where(Credential.issuer_serial == certificate.issuer_serial)).one()
                if same.legal_person_id != target.id:
                    raise CertificateRejectedError(RejectionReason.IDENTIFIER_CONFLICT, "concurrent binding") from None
        if created:
            target.created_by = f"certificate:{same.id}"
        same.last_used_at = now
        if same.algorithm is None:
            same.algorithm = describe(certificate.certificate)[:96]
        # Policy: the name follows the most recent valid certificate (companies rename;
        # the CA attested the new name), the key (USCC) never changes.
        name = certificate.mapping.name
        if name and name != target.name and len(name) <= 200 and mapped.kind == "uscc":
            target.name = name
            target.updated_at = now
        self._session.flush()
        return LegalPersonIdentity(target.id, target.account_id, target.uscc, target.name, same.id, created)

    def _by_alias(self, kind: str, value: str) -> LegalPerson:
        column = LegalPerson.org_code if kind == "org_code" else LegalPerson.reg_no
        rows = list(self._session.scalars(select(LegalPerson).where(column == value).limit(2)))
        if len(rows) != 1:
            # Issue 4: an old certificate carrying only an alias maps to the USCC holding
            # it when exactly one exists; guessing between several would let one company
            # log in as another.
            raise CertificateRejectedError(
                RejectionReason.AMBIGUOUS_ORG_CODE,
                f"{kind} {value} matches {'no' if not rows else 'several'} legal persons",
            )
        return rows[0]

    @staticmethod
    def _name_of(certificate: ValidatedCertificate, uscc: str) -> str:
        name = (certificate.mapping.name or "").strip()
        return name[:200] if name else uscc

    def revoke_credential(self, credential_id: int, *, by: str) -> Credential:
        """An administrator revokes one certificate credential (lost UKey): it stops
        resolving even while its CA still vouches for it."""
        cred = self._session.get(Credential, credential_id)
        if cred is None:
            raise CredentialNotFoundError(f"credential {credential_id}")
        cred.status = "revoked"
        cred.status_detail = f"{self._clock.now().isoformat()}: revoked by {by}"
        self._session.flush()
        return cred

    def reinstate_credential(self, credential_id: int, *, by: str) -> Credential:
        """An administrator clears the flag of a credential after looking at the conflict
        (e.g. a CA reissued a key to the same company under a corrected identifier): it
        resolves again. Only a flagged credential can be reinstated; the flag's reason is
        kept in ``status_detail``. Raises ``CredentialNotFoundError``,
        ``CredentialStateError``. Updates the ``certificates_credentials`` row.

        Policy: a flag is cleared by an administrator only (``resolve`` never clears it),
        and a later conflicting certificate flags the credential again."""
        cred = self._session.get(Credential, credential_id)
        if cred is None:
            raise CredentialNotFoundError(f"credential {credential_id}")
        if cred.status != "flagged":
            raise CredentialStateError(f"credential {credential_id} is {cred.status}")
        previous = (cred.status_detail or "")[:2000]
        cred.status = "active"
        cred.status_detail = f"{self._clock.now().isoformat()}: reinstated by {by}; was flagged: {previous}"
        self._session.flush()
        return cred

    # -- mandates -----------------------------------------------------------------------

    def grant_by_admin(
        self,
        admin: str,
        *,
        agent_account_id: int,
        legal_person_id: int,
        scope: Sequence[str],
        valid_until: datetime,
        valid_from: datetime | None = None,
    ) -> Mandate:
        """Grant a mandate on an administrator's authority (``admin`` is their name).
        Raises ``MandateError`` (scope, validity, agent, duplicate),
        ``LegalPersonNotFoundError``. Adds a ``certificates_mandates`` row."""
        if not _ADMIN.match(admin):
            raise MandateError("bad admin name", public_message="The administrator name is not valid.")
        return self._grant(f"admin:{admin}", agent_account_id, legal_person_id, scope, valid_until, valid_from)

    def grant_by_certificate(
        self,
        identity: LegalPersonIdentity,
        *,
        agent_account_id: int,
        scope: Sequence[str],
        valid_until: datetime,
        valid_from: datetime | None = None,
    ) -> Mandate:
        """Grant a mandate on the authority of a certificate login of the legal person
        itself (so a company's session grants only for that company). The credential must
        still be active. Errors and side effects as ``grant_by_admin``."""
        cred = self._session.get(Credential, identity.credential_id)
        if cred is None or cred.status != "active" or cred.legal_person_id != identity.legal_person_id:
            raise MandateError("credential not active", public_message="The certificate is not an active credential.")
        return self._grant(f"certificate:{cred.id}", agent_account_id, identity.legal_person_id, scope,
                           valid_until, valid_from)

    def _grant(
        self,
        granted_by: str,
        agent_account_id: int,
        legal_person_id: int,
        scope: Sequence[str],
        valid_until: datetime,
        valid_from: datetime | None,
    ) -> Mandate:
        now = self._clock.now()
        start = valid_from or now
        scopes = list(dict.fromkeys(scope))
        if not scopes or len(scopes) > 32 or not all(isinstance(s, str) and _SCOPE.match(s) for s in scopes):
            raise MandateError("bad scope", public_message="A mandate needs 1-32 scope values (lower-case words).")
        if valid_until <= start or valid_until <= now:
            raise MandateError("bad validity", public_message="A mandate must end after it starts and in the future.")
        if valid_until - start > timedelta(days=MAX_MANDATE_DAYS):
            raise MandateError("too long", public_message=f"A mandate lasts at most {MAX_MANDATE_DAYS} days.")
        legal_person = self.get(legal_person_id)
        if legal_person.status != "active":
            raise MandateError("legal person inactive", public_message="The legal person is not active.")
        # An organisation account acts through certificates, never as someone's agent.
        if self.find_by_account(agent_account_id) is not None:
            raise MandateError("agent is a legal person", public_message="An agent must be a natural-person account.")
        if self._active_rows(agent_account_id, legal_person_id, now):
            raise MandateError("already granted",
                               public_message="This account already has an active mandate for this legal person; "
                                              "revoke it first.")
        row = Mandate(
            agent_account_id=agent_account_id,
            legal_person_id=legal_person_id,
            scope=scopes,
            valid_from=start,
            valid_until=valid_until,
            granted_by=granted_by[:128],
            granted_at=now,
        )
        insert_unique(self._session, row, MandateError("unknown agent account", public_message="No such agent account."))
        return row

    def revoke_mandate(self, mandate_id: int, *, by: str) -> Mandate:
        """End a mandate now (idempotent: a revoked mandate keeps its first revocation)."""
        row = self._session.get(Mandate, mandate_id)
        if row is None:
            raise MandateNotFoundError(f"mandate {mandate_id}")
        if row.revoked_at is None:
            row.revoked_at = self._clock.now()
            row.revoked_by = by[:128]
            self._session.flush()
        return row

    def mandates_of(self, legal_person_id: int) -> list[Mandate]:
        """Every mandate of a legal person, active or not (newest first)."""
        return list(self._session.scalars(
            select(Mandate).where(Mandate.legal_person_id == legal_person_id).order_by(Mandate.id.desc())))

    def _active_rows(self, agent_account_id: int, legal_person_id: int | None, now: datetime) -> list[Mandate]:
        query = select(Mandate).where(
            Mandate.agent_account_id == agent_account_id,
            Mandate.revoked_at.is_(None),
            Mandate.valid_from <= now,
            Mandate.valid_until > now,
        )
        if legal_person_id is not None:
            query = query.where(Mandate.legal_person_id == legal_person_id)
        return list(self._session.scalars(query.order_by(Mandate.id)))

    def active_for(self, agent_account_id: int) -> list[ActingFor]:
        """The legal persons this account may act for now (the company picker)."""
        now = self._clock.now()
        out = []
        for m in self._active_rows(agent_account_id, None, now):
            lp = self.get(m.legal_person_id)
            if lp.status == "active":
                out.append(ActingFor(m.id, lp.id, lp.account_id, lp.uscc, lp.name, tuple(m.scope), m.valid_until))
        return out

    def get_active(self, agent_account_id: int, legal_person_id: int) -> ActingFor:
        """The active mandate of this agent for this legal person. Raises
        ``MandateNotFoundError`` (none, expired, revoked, or the legal person inactive)."""
        for acting in self.active_for(agent_account_id):
            if acting.legal_person_id == legal_person_id:
                return acting
        raise MandateNotFoundError(f"no active mandate {agent_account_id} -> {legal_person_id}")
