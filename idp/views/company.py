"""The company page of a certificate-authenticated legal person (issue 4): its
certificates, and the mandates it grants to agents (经办人) on the authority of the
certificate it logged in with."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import redirect, request, url_for

from certificates.legal import LegalPersonIdentity
from common.db import db
from common.errors import DomainError

from ..i18n import error_text
from ..models import Account
from . import bp
from ._web import check_csrf, locale, render, services, sso_cookie


def _company() -> tuple[Any, Any] | None:
    """(session, legal person) for a live certificate login of an organisation."""
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    if sso is None or "hwk" not in sso.amr or not sso.context.get("credential_id"):
        return None
    account = svc.session.get(Account, sso.account_id)
    if account is None or account.kind != "organization":
        return None
    person = svc.legal.find_by_account(account.id)
    return (sso, person) if person is not None else None


def _page(status: int = 200, error: str | None = None, notice: str | None = None) -> Any:
    current = _company()
    if current is None:
        return redirect(url_for("idp.certificate_login"), code=303)
    _, person = current
    svc = services()
    return render("idp/company.html", status, person=person, credentials=svc.legal.credentials(person.id),
                  mandates=svc.legal.mandates_of(person.id), error=error, notice=notice)


@bp.get("/company")
def company() -> Any:
    return _page()


@bp.post("/company/mandates")
def company_grant() -> Any:
    current = _company()
    if current is None:
        return redirect(url_for("idp.certificate_login"), code=303)
    if not check_csrf():
        return _page(400, error_text("csrf", "This page has expired. Please try again.", locale()))
    sso, person = current
    svc = services()
    agent = svc.accounts.find_by_identifier(request.form.get("agent", "")[:64])
    if agent is None or agent.kind != "person":
        return _page(400, error_text("no_agent", "No such person account.", locale()))
    scopes = [s for s in request.form.get("scope", "").replace(",", " ").split() if s][:32]
    days = request.form.get("days", "365")
    if not days.isdigit() or not 1 <= int(days) <= 1095:
        return _page(400, error_text("bad_days", "Validity is 1 to 1095 days.", locale()))
    identity = LegalPersonIdentity(legal_person_id=person.id, account_id=person.account_id, uscc=person.uscc,
                                   name=person.name, credential_id=int(sso.context["credential_id"]), created=False)
    try:
        svc.legal.grant_by_certificate(identity, agent_account_id=agent.id, scope=scopes,
                                       valid_until=svc.p.clock.now() + timedelta(days=int(days)))
    except DomainError as exc:
        db.session.rollback()
        return _page(400, exc.public_message)
    db.session.commit()
    return redirect(url_for("idp.company"), code=303)


@bp.post("/company/mandates/<int:mandate_id>/revoke")
def company_revoke(mandate_id: int) -> Any:
    current = _company()
    if current is None:
        return redirect(url_for("idp.certificate_login"), code=303)
    if not check_csrf():
        return _page(400, error_text("csrf", "This page has expired. Please try again.", locale()))
    sso, person = current
    svc = services()
    if mandate_id not in {m.id for m in svc.legal.mandates_of(person.id)}:
        return _page(404, error_text("no_mandate", "No such mandate.", locale()))
    svc.legal.revoke_mandate(mandate_id, by=f"certificate:{sso.context['credential_id']}")
    db.session.commit()
    return redirect(url_for("idp.company"), code=303)
