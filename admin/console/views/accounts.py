"""Accounts and their SSO sessions: search (username, phone, ID number; numbers shown
masked), detail, lock/unlock, second-factor reset, the reason-bound reveal of an ID
number, re-identification of a portal's ``sub``, and ending sessions. Every operation is
a call to ``admin.accounts.AccountAdminService`` or ``admin.sessions.SessionAdminService``
(permission check and audit event there too).

Ending sessions notifies their portals like the citizen's own logout
(``idp.views.pages._finish_logout``): commit, then send the back-channel logout tokens
(OIDC Back-Channel Logout 1.0 §2.5), then commit the delivery records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import request, url_for

from admin.accounts import SearchBy
from admin.errors import RevealReasonError
from admin.roles import Permission
from admin.sessions import EndedSessions
from common.db import db
from idp.errors import ClientNotFoundError, ReidentificationRequestError

from .. import bp
from ..web import admin_services, current_admin, render, requires, see_other, show_once, shown_once


def _epoch(value: int) -> str:
    # Sessions keep Unix times (idp.sessions); shown in UTC like the rest of the console.
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")


def _done() -> str | None:
    return request.args.get("done")


def _commit_and_notify(ended: EndedSessions) -> None:
    db.session.commit()
    if ended.deliveries:
        admin_services().sessions.deliver(ended)
        db.session.commit()


def _search(query: str, cursor: str | None) -> Any:
    page = admin_services().accounts.search(current_admin().actor, query=query or None, cursor=cursor)
    # A search by phone or ID number is audited (the service queued the event).
    db.session.commit()
    # Personal data is not echoed back into the page: the number searched for stays out.
    shown = query if page.by not in (SearchBy.PHONE, SearchBy.ID_NUMBER) else ""
    return render("admin/accounts.html", page=page, q=shown, done=_done())


@bp.get("/accounts")
@requires(Permission.ACCOUNTS_READ)
def accounts() -> Any:
    return _search(request.args.get("q", "")[:200], request.args.get("cursor") or None)


@bp.post("/accounts")
@requires(Permission.ACCOUNTS_READ)
def accounts_search() -> Any:
    """Policy: phone and ID numbers are personal data and must not travel in URLs
    (browser history, proxy logs), so the search form is POSTed and answered with the
    results directly. It changes nothing but the audit trail, so no 303 is needed; a
    look-up by phone or ID number has at most one result (unique blind indexes), so no
    page link carries the term either."""
    return _search(request.form.get("q", "")[:200], None)


@bp.get("/accounts/<int:account_id>")
@requires(Permission.ACCOUNTS_READ)
def account(account_id: int) -> Any:
    detail = admin_services().accounts.get(current_admin().actor, account_id)
    return render("admin/account.html", account=detail, done=_done(),
                  revealed=shown_once(request.args.get("shown")))


@bp.post("/accounts/<int:account_id>/lock")
@requires(Permission.ACCOUNTS_WRITE)
def account_lock(account_id: int) -> Any:
    result = admin_services().accounts.lock(current_admin().actor, account_id)
    _commit_and_notify(result.ended)
    return see_other(url_for("console.account", account_id=account_id, done="locked"))


@bp.post("/accounts/<int:account_id>/unlock")
@requires(Permission.ACCOUNTS_WRITE)
def account_unlock(account_id: int) -> Any:
    admin_services().accounts.unlock(current_admin().actor, account_id)
    db.session.commit()
    return see_other(url_for("console.account", account_id=account_id, done="unlocked"))


@bp.post("/accounts/<int:account_id>/reset-mfa")
@requires(Permission.ACCOUNTS_WRITE)
def account_reset_mfa(account_id: int) -> Any:
    if request.form.get("confirm") != "yes":
        # The confirmation box is checked by the browser too; the server decides.
        return see_other(url_for("console.account", account_id=account_id))
    admin_services().accounts.reset_second_factor(current_admin().actor, account_id)
    db.session.commit()
    return see_other(url_for("console.account", account_id=account_id, done="mfa_reset"))


@bp.get("/accounts/<int:account_id>/reveal")
@requires(Permission.ACCOUNTS_REVEAL)
def account_reveal_form(account_id: int) -> Any:
    detail = admin_services().accounts.get(current_admin().actor, account_id)
    return render("admin/account_reveal.html", account=detail, reason="", error=None)


@bp.post("/accounts/<int:account_id>/reveal")
@requires(Permission.ACCOUNTS_REVEAL)
def account_reveal(account_id: int) -> Any:
    ops, actor = admin_services().accounts, current_admin().actor
    reason = request.form.get("reason", "")[:2000]
    try:
        number = ops.reveal_id_number(actor, account_id, reason)
    except RevealReasonError as exc:
        db.session.rollback()
        return render("admin/account_reveal.html", 400, account=ops.get(actor, account_id), reason=reason,
                      error=exc.code)
    db.session.commit()
    # The number crosses the 303 encrypted in the store, for this console session, once.
    return see_other(url_for("console.account", account_id=account_id, shown=show_once(number), done="revealed"))


@bp.get("/accounts/<int:account_id>/sessions")
@requires(Permission.SESSIONS_READ)
def account_sessions(account_id: int) -> Any:
    rows = admin_services().sessions.for_account(current_admin().actor, account_id)
    return render("admin/account_sessions.html", account_id=account_id, sessions=rows, done=_done(), epoch=_epoch)


@bp.post("/accounts/<int:account_id>/sessions/<sid>/end")
@requires(Permission.SESSIONS_WRITE)
def account_session_end(account_id: int, sid: str) -> Any:
    _commit_and_notify(admin_services().sessions.end(current_admin().actor, account_id, sid[:64]))
    return see_other(url_for("console.account_sessions", account_id=account_id, done="session_ended"))


@bp.post("/accounts/<int:account_id>/sessions/end-all")
@requires(Permission.SESSIONS_WRITE)
def account_sessions_end_all(account_id: int) -> Any:
    _commit_and_notify(admin_services().sessions.end_all(current_admin().actor, account_id))
    return see_other(url_for("console.account_sessions", account_id=account_id, done="sessions_ended"))


_REIDENTIFY_FIELDS = ("client_id", "sub", "reason", "requested_by")


@bp.get("/accounts/reidentify")
@requires(Permission.ACCOUNTS_REVEAL)
def reidentify_form() -> Any:
    return render("admin/reidentify.html", values=dict.fromkeys(_REIDENTIFY_FIELDS, ""), error=None, done=_done())


@bp.post("/accounts/reidentify")
@requires(Permission.ACCOUNTS_REVEAL)
def reidentify() -> Any:
    values = {name: request.form.get(name, "")[:2000] for name in _REIDENTIFY_FIELDS}
    try:
        found = admin_services().accounts.reidentify(
            current_admin().actor, values["client_id"], values["sub"], reason=values["reason"],
            requested_by=values["requested_by"])
    except (ReidentificationRequestError, ClientNotFoundError) as exc:
        db.session.rollback()
        return render("admin/reidentify.html", 400, values=values, error=exc.public_message, done=None)
    # A miss is audited too (idp.reidentification): commit either way.
    db.session.commit()
    if found is None:
        return see_other(url_for("console.reidentify_form", done="no_match"))
    return see_other(url_for("console.account", account_id=found.account_id, done="reidentified"))
