"""Legal persons (法人): search by USCC or name, a legal person's bound certificates,
agents and mandates; unbind a certificate, reinstate a flagged one, revoke a mandate.
Every operation is a call to ``admin.legal.LegalAdminService``."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from admin.roles import Permission
from certificates.errors import CredentialNotFoundError, LegalPersonNotFoundError, MandateNotFoundError
from common.db import db
from common.errors import NotFoundError

from .. import bp
from ..web import admin_services, current_admin, render, requires, see_other


def _id(value: str, error: type[NotFoundError]) -> int:
    if not value.isdigit() or len(value) > 18:
        raise error(f"id {value[:40]!r}")
    return int(value)


@bp.get("/legal-persons")
@requires(Permission.LEGAL_READ)
def legal_persons() -> Any:
    query = request.args.get("q", "")[:200]
    page = admin_services().legal.search(current_admin().actor, query=query or None,
                                         cursor=request.args.get("cursor") or None)
    return render("admin/legal_persons.html", page=page, q=query)


@bp.get("/legal-persons/<legal_person_id>")
@requires(Permission.LEGAL_READ)
def legal_person(legal_person_id: str) -> Any:
    detail = admin_services().legal.get(current_admin().actor, _id(legal_person_id, LegalPersonNotFoundError))
    return render("admin/legal_person.html", detail=detail, done=request.args.get("done"))


@bp.post("/legal-persons/<legal_person_id>/credentials/<credential_id>/unbind")
@requires(Permission.LEGAL_WRITE)
def credential_unbind(legal_person_id: str, credential_id: str) -> Any:
    person = _id(legal_person_id, LegalPersonNotFoundError)
    if request.form.get("confirm") != "yes":
        # Permanent, so confirmed (the checkbox is required by the browser too; the server decides).
        return see_other(url_for("console.legal_person", legal_person_id=person))
    admin_services().legal.unbind(current_admin().actor, person, _id(credential_id, CredentialNotFoundError))
    db.session.commit()
    return see_other(url_for("console.legal_person", legal_person_id=person, done="unbound"))


@bp.post("/legal-persons/<legal_person_id>/credentials/<credential_id>/reinstate")
@requires(Permission.LEGAL_WRITE)
def credential_reinstate(legal_person_id: str, credential_id: str) -> Any:
    person = _id(legal_person_id, LegalPersonNotFoundError)
    admin_services().legal.reinstate(current_admin().actor, person, _id(credential_id, CredentialNotFoundError))
    db.session.commit()
    return see_other(url_for("console.legal_person", legal_person_id=person, done="reinstated"))


@bp.post("/legal-persons/<legal_person_id>/mandates/<mandate_id>/revoke")
@requires(Permission.LEGAL_WRITE)
def mandate_revoke(legal_person_id: str, mandate_id: str) -> Any:
    person = _id(legal_person_id, LegalPersonNotFoundError)
    admin_services().legal.revoke_mandate(current_admin().actor, person, _id(mandate_id, MandateNotFoundError))
    db.session.commit()
    return see_other(url_for("console.legal_person", legal_person_id=person, done="mandate_revoked"))
