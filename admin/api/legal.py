"""Legal persons in the admin API (issue 6): search by USCC or name, the bound
certificates, agents and mandates of one; unbind or reinstate a credential, revoke a mandate."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from certificates.models import LegalPerson as LegalPersonRow

from ..legal import CredentialView, MandateView
from ..legal import LegalPersonDetail as DetailView
from ..roles import Permission
from .bodies import NO_CONTROL, Body, DbId, Omittable, OneOf, Params, QueryInt, Timestamp, timestamp
from .operations import CONFLICT, NOT_FOUND, Call, Page, Reply, Route, page_reply


class LegalPerson(Body):
    id: int
    uscc: str
    name: str
    org_code: str
    reg_no: str | None
    status: str
    account_id: int
    created_at: Timestamp
    updated_at: Timestamp


class LegalPersonPage(Page):
    items: list[LegalPerson]


class Credential(Body):
    """A certificate bound to a legal person. flagged: the certificate or its key was seen mapping to another
    legal person (status_detail says which)."""

    id: int
    ca_id: int
    ca_name: str
    issuer: str
    serial: str = Field(description="Hexadecimal.")
    spki_sha256: str = Field(description="base64url SHA-256 of the SubjectPublicKeyInfo.")
    algorithm: str | None = Field(description=(
        'Key / signature algorithm, e.g. "SM2 / SM2-with-SM3"; null for certificates bound before this was '
        "recorded and not used since."))
    not_before: Timestamp
    not_after: Timestamp
    expired: bool
    status: Annotated[str, OneOf(("active", "revoked", "flagged"))]
    status_detail: str | None
    created_at: Timestamp
    last_used_at: Timestamp | None


class Mandate(Body):
    id: int
    agent_account_id: int
    agent_username: str | None
    scope: list[str]
    state: Annotated[str, OneOf(("active", "pending", "expired", "revoked"))]
    valid_from: Timestamp
    valid_until: Timestamp
    granted_by: str
    granted_at: Timestamp
    revoked_at: Timestamp | None
    revoked_by: str | None


class LegalPersonDetail(Body):
    legal_person: LegalPerson
    credentials: list[Credential]
    mandates: list[Mandate]


class LegalPersonSearch(Params):
    q: Omittable[Annotated[str, StringConstraints(max_length=200), NO_CONTROL]] = Field(
        default=None, description="A USCC, or part of the name (any case)")
    limit: QueryInt = Field(default=50, ge=1, le=200, description="Page size (default 50)")
    cursor: Omittable[DbId] = Field(default=None, description="next_cursor of the previous page")


class LegalPersonPath(Params):
    legal_person_id: DbId = Field(description="Legal person id")


class CredentialPath(LegalPersonPath):
    credential_id: DbId = Field(description="Credential id (of this legal person)")


class MandatePath(LegalPersonPath):
    mandate_id: DbId = Field(description="Mandate id (of this legal person)")


# -- representations ------------------------------------------------------------------


def legal_person_json(row: LegalPersonRow) -> LegalPerson:
    return LegalPerson(id=row.id, uscc=row.uscc, name=row.name, org_code=row.org_code, reg_no=row.reg_no,
                       status=row.status, account_id=row.account_id, created_at=row.created_at.isoformat(),
                       updated_at=row.updated_at.isoformat())


def credential_json(view: CredentialView) -> Credential:
    row = view.row
    return Credential(id=row.id, ca_id=row.ca_id, ca_name=view.ca_name, issuer=view.issuer, serial=view.serial,
                      spki_sha256=row.spki_sha256, algorithm=row.algorithm, not_before=row.not_before.isoformat(),
                      not_after=row.not_after.isoformat(), expired=view.expired, status=row.status,
                      status_detail=row.status_detail, created_at=row.created_at.isoformat(),
                      last_used_at=timestamp(row.last_used_at))


def mandate_json(view: MandateView) -> Mandate:
    row = view.row
    return Mandate(id=row.id, agent_account_id=row.agent_account_id, agent_username=view.agent_username,
                   scope=list(row.scope or ()), state=view.state, valid_from=row.valid_from.isoformat(),
                   valid_until=row.valid_until.isoformat(), granted_by=row.granted_by,
                   granted_at=row.granted_at.isoformat(), revoked_at=timestamp(row.revoked_at), revoked_by=row.revoked_by)


def legal_person_detail_json(detail: DetailView) -> LegalPersonDetail:
    return LegalPersonDetail(legal_person=legal_person_json(detail.person),
                             credentials=[credential_json(c) for c in detail.credentials],
                             mandates=[mandate_json(m) for m in detail.mandates])


# -- handlers -------------------------------------------------------------------------


def list_legal_persons(call: Call) -> Reply:
    params = call.params_as(LegalPersonSearch)
    page = call.admin.legal.search(call.actor, query=params.q, limit=params.limit, cursor=params.cursor)
    return page_reply(LegalPersonPage(items=[legal_person_json(p) for p in page.items], next_cursor=page.next_cursor),
                      "/legal-persons", params)


def get_legal_person(call: Call) -> Reply:
    legal_person_id = int(call.params_as(LegalPersonPath).legal_person_id)
    return Reply(200, legal_person_detail_json(call.admin.legal.get(call.actor, legal_person_id)))


def unbind_credential(call: Call) -> Reply:
    path = call.params_as(CredentialPath)
    return Reply(200, credential_json(call.admin.legal.unbind(call.actor, int(path.legal_person_id),
                                                              int(path.credential_id))))


def reinstate_credential(call: Call) -> Reply:
    path = call.params_as(CredentialPath)
    return Reply(200, credential_json(call.admin.legal.reinstate(call.actor, int(path.legal_person_id),
                                                                 int(path.credential_id))))


def revoke_mandate(call: Call) -> Reply:
    path = call.params_as(MandatePath)
    return Reply(200, mandate_json(call.admin.legal.revoke_mandate(call.actor, int(path.legal_person_id),
                                                                   int(path.mandate_id))))


ROUTES = (
    Route("GET", "/legal-persons", "listLegalPersons", "Search legal persons by USCC (exact) or name (part)",
          Permission.LEGAL_READ, list_legal_persons,
          (200, LegalPersonPage, "One page of legal persons; next_cursor and a Link rel=next when more"),
          params=LegalPersonSearch),
    Route("GET", "/legal-persons/{legal_person_id}", "getLegalPerson",
          "A legal person with its bound certificates, agents and mandates", Permission.LEGAL_READ,
          get_legal_person, (200, LegalPersonDetail, "The legal person"), params=LegalPersonPath, errors=NOT_FOUND),
    Route("POST", "/legal-persons/{legal_person_id}/credentials/{credential_id}/unbind", "unbindCredential",
          "Unbind a certificate: its credential is revoked and the certificate no longer logs in (permanent)",
          Permission.LEGAL_WRITE, unbind_credential, (200, Credential, "Unbound (revoked)"), params=CredentialPath,
          errors=CONFLICT),
    Route("POST", "/legal-persons/{legal_person_id}/credentials/{credential_id}/reinstate", "reinstateCredential",
          "Clear the flag of a credential after reviewing the conflict", Permission.LEGAL_WRITE,
          reinstate_credential, (200, Credential, "Active again"), params=CredentialPath, errors=CONFLICT),
    Route("POST", "/legal-persons/{legal_person_id}/mandates/{mandate_id}/revoke", "revokeMandate",
          "End an agent's mandate now", Permission.LEGAL_WRITE, revoke_mandate, (200, Mandate, "Revoked"),
          params=MandatePath, errors=CONFLICT),
)
