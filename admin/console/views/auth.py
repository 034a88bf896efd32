"""Console login (an OIDC relying party of this provider), callback and logout."""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, request, url_for

from common.crypto import random_token
from common.db import db

from .. import bp
from ..login import LOGIN_TTL, ConsoleLoginError, SecondFactorRequiredError, TokenExchangeError
from ..sessions import ABSOLUTE_TIMEOUT
from ..web import (
    ANY_ADMIN,
    clear_cookie,
    client_ip,
    current_admin,
    exchange_code,
    locale,
    login_cookie_name,
    login_service,
    provider,
    public,
    render,
    requires,
    see_other,
    services,
    session_cookie_name,
    session_store,
    set_cookie,
)


@bp.get("/login")
@public
def login() -> Any:
    """Start the authorization code flow against our own /authorize."""
    if session_store().get(request.cookies.get(session_cookie_name())) is not None:
        return redirect(url_for("console.home"))
    svc = login_service()
    if svc.ensure_client():
        services().audit.record("admin.console_client.ensure", actor="system", target="client:yiwang-console")
        db.session.commit()
    # One binding per browser: a second tab reuses it, so both logins can finish.
    existing = request.cookies.get(login_cookie_name(), "")
    binding = existing if 20 <= len(existing) <= 64 else random_token(24)
    response = redirect(svc.begin(binding, ui_locale=locale()))
    set_cookie(response, login_cookie_name(), binding, max_age=LOGIN_TTL, samesite="Lax")
    return response


@bp.get("/callback")
@public
def callback() -> Any:
    """The authorization response (RFC 6749 §4.1.2): check state, exchange the code, validate
    the ID token, require a role and a second factor, start a console session."""
    svc = login_service()
    binding = request.cookies.get(login_cookie_name())
    try:
        pending = svc.take_pending(request.args.get("state"), binding)
        # RFC 9207 §2.4: the response names the issuer we sent the request to.
        if request.args.get("iss") != provider().settings.issuer:
            raise TokenExchangeError("iss missing or foreign in the authorization response")
        error = request.args.get("error")
        if error:
            return _denied("access_denied" if error == "access_denied" else "login_error", 403, actor="anonymous")
        code = request.args.get("code", "")
        if not 0 < len(code) <= 256:
            raise TokenExchangeError("no code")
        status, body = exchange_code(*svc.token_request(code, pending))
        identity = svc.identify(status, body, pending)
    except ConsoleLoginError as exc:
        who = exc.account_id if isinstance(exc, SecondFactorRequiredError) else None
        return _denied(exc.code, exc.status_code, actor=f"account:{who}" if who else "anonymous")
    store = session_store()
    # A new session id at every login (no fixation); an older console session ends.
    store.end(request.cookies.get(session_cookie_name()))
    cookie, _ = store.create(account_id=identity.account_id, auth_time=identity.auth_time, amr=list(identity.amr),
                             locale=locale())
    services().audit.record("admin.login", actor=f"account:{identity.account_id}", ip=client_ip(),
                            details={"roles": sorted(identity.roles), "amr": sorted(identity.amr)})
    db.session.commit()
    response = see_other(url_for("console.home"))
    # SameSite=Strict: no console request carries the session when started from another site.
    set_cookie(response, session_cookie_name(), cookie, max_age=ABSOLUTE_TIMEOUT, samesite="Strict")
    clear_cookie(response, login_cookie_name())
    return response


def _denied(reason: str, status: int, *, actor: str) -> Any:
    services().audit.record("admin.login", actor=actor, outcome="denied", reason=reason, ip=client_ip())
    db.session.commit()
    body, code = render("admin/denied.html", status, reason=reason)
    response = current_app.make_response((body, code))
    clear_cookie(response, login_cookie_name())
    return response


@bp.get("/logout")
@requires(ANY_ADMIN)
def logout_confirm() -> Any:
    return render("admin/logout.html")


@bp.post("/logout")
@requires(ANY_ADMIN)
def logout() -> Any:
    admin = current_admin()
    session_store().end(admin.cookie)
    services().audit.record("admin.logout", actor=admin.actor.audit_id, ip=client_ip())
    db.session.commit()
    response = see_other(url_for("console.logged_out"))
    clear_cookie(response, session_cookie_name())
    return response


@bp.get("/logged-out")
@public
def logged_out() -> Any:
    return render("admin/logged_out.html")
