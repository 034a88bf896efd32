"""Console views. ``guard`` runs before every console request: it establishes the
administrator, checks the view's declared permission (GET and POST alike) and, for POST,
the CSRF token."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, g, redirect, request, url_for

from admin.actor import record_denied
from admin.errors import AdminForbiddenError
from common.db import db
from common.errors import DomainError
from idp.errors import AccountNotFoundError

from .. import bp
from ..web import (
    Admin,
    admin_services,
    check_csrf,
    clear_cookie,
    client_ip,
    declared_permission,
    is_public,
    render,
    services,
    session_cookie_name,
    session_store,
)

log = logging.getLogger("yiwang.console")


@bp.before_request
def guard() -> Any:
    view = current_app.view_functions.get(request.endpoint or "")
    if request.endpoint == "console.static" or (view is not None and is_public(view)):
        return None
    cookie = request.cookies.get(session_cookie_name())
    session = session_store().get(cookie)
    if cookie is None or session is None:
        return redirect(url_for("console.login"), code=303 if request.method == "POST" else 302)
    svc = services()
    try:
        account = svc.accounts.get(session.account_id)
    except AccountNotFoundError:
        account = None
    # Roles are read at every request: a revoked role or a locked account ends access at once.
    active = account is not None and account.status == "active"
    actor = admin_services().admins.actor(session.account_id, client_ip())
    roles = actor.roles if active else frozenset()
    if not roles:
        session_store().end(cookie)
        body, status = render("admin/denied.html", 403, reason="no_role")
        response = current_app.make_response((body, status))
        clear_cookie(response, session_cookie_name())
        return response
    g.console_admin = admin = Admin(cookie=cookie, session=session,
                                    username=account.username if account else None, actor=actor)
    explicit = request.args.get("lang")
    if explicit in ("zh-CN", "en") and explicit != session.locale:
        session.locale = explicit
        session_store().save(cookie, session)
    needed = declared_permission(view) if view is not None else None
    if needed is None or not admin.can(needed):
        # Fail closed: a view without a declaration is refused like a missing permission.
        svc.audit.record("admin.denied", actor=admin.actor.audit_id, outcome="denied", reason="permission", ip=client_ip(),
                         details={"endpoint": request.endpoint or "", "method": request.method,
                                  "permission": str(needed or "undeclared")})
        db.session.commit()
        return render("admin/forbidden.html", 403, needed=str(needed or ""))
    if request.method == "POST" and not check_csrf(admin):
        return render("admin/csrf.html", 400)
    return None


@bp.errorhandler(AdminForbiddenError)
def forbidden(exc: AdminForbiddenError) -> Any:
    """The operation module refused (defence in depth behind the guard): nothing of it
    persists, the refusal is audited."""
    db.session.rollback()
    record_denied(services().audit, g.console_admin.actor, exc)
    db.session.commit()
    return render("admin/forbidden.html", 403, needed=exc.permission)


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> Any:
    # STYLE.md: the fixed public message only; the detail goes to the log.
    db.session.rollback()
    log.info("console operation refused", extra={"code": exc.code})
    return render("admin/error.html", exc.status_code, message=exc.public_message, code=exc.code)


from . import accounts, audit, auth, cas, clients, home, keys, legal  # noqa: E402,F401  (routes register on import)
