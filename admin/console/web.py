"""Request helpers of the console: services, the administrator of this request,
per-view permissions, CSRF, locale, rendering, and the in-process token request."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import current_app, g, redirect, render_template, request
from werkzeug.test import Client as WsgiClient

from admin.actor import Actor
from admin.roles import Permission, permissions_of
from admin.service import AdminServices
from common.crypto import constant_time_equals, random_token
from common.db import db
from idp.discovery import ENDPOINTS
from idp.provider import Provider, Services

from .i18n import choose_locale, translate
from .login import ConsoleLoginService
from .sessions import ConsoleSession, ConsoleSessionStore

F = TypeVar("F", bound=Callable[..., Any])

# Marks on view functions, read by the blueprint's guard (``guard`` below).
_PERMISSION_ATTR = "console_permission"
_PUBLIC_ATTR = "console_public"
ANY_ADMIN = "any-administrator"


def requires(permission: Permission | str) -> Callable[[F], F]:
    """Declare what a view needs: a ``Permission``, or ``ANY_ADMIN`` for pages every
    administrator may see. A console view without a declaration is refused (fail closed)."""

    def mark(view: F) -> F:
        setattr(view, _PERMISSION_ATTR, permission)
        return view

    return mark


def public(view: F) -> F:
    """The login steps: reachable without a console session."""
    setattr(view, _PUBLIC_ATTR, True)
    return view


def declared_permission(view: Callable[..., Any]) -> Permission | str | None:
    value: Permission | str | None = getattr(view, _PERMISSION_ATTR, None)
    return value


def is_public(view: Callable[..., Any]) -> bool:
    return bool(getattr(view, _PUBLIC_ATTR, False))


# -- services -----------------------------------------------------------------------


def provider() -> Provider:
    value: Provider = current_app.extensions["yiwang.provider"]
    return value


def services() -> Services:
    if "yiwang_services" not in g:
        g.yiwang_services = provider().services(db.session)  # type: ignore[arg-type]
    value: Services = g.yiwang_services
    return value


def admin_services() -> AdminServices:
    """The audited administration operations (admin/service.py), bound to this request."""
    if "yiwang_admin_services" not in g:
        g.yiwang_admin_services = AdminServices(
            services(), alert_thresholds=current_app.config["YIWANG_SETTINGS"].alert_thresholds())
    value: AdminServices = g.yiwang_admin_services
    return value


def login_service() -> ConsoleLoginService:
    p, svc = provider(), services()
    return ConsoleLoginService(
        db.session,  # type: ignore[arg-type]
        store=p.store, clock=p.clock, hasher=p.hasher, clients=svc.clients, client_cache=p.client_cache,
        tokens=svc.tokens, admins=admin_services().admins, issuer=p.settings.issuer,
    )


def session_store() -> ConsoleSessionStore:
    p = provider()
    return ConsoleSessionStore(store=p.store, clock=p.clock, hasher=p.hasher)


def client_ip() -> str:
    # ProxyFix (configured with the number of trusted proxies) has already set this.
    return request.remote_addr or "unknown"


# -- cookies --------------------------------------------------------------------------


def _cookie_name(base: str) -> str:
    # RFC 6265bis §4.1.3.2: __Host- pins the cookie to this host over https (Path=/).
    return f"__Host-{base}" if provider().settings.secure_cookies else base


def session_cookie_name() -> str:
    return _cookie_name("yiwang_admin")


def login_cookie_name() -> str:
    return _cookie_name("yiwang_admin_login")


def set_cookie(response: Any, name: str, value: str, *, max_age: int | None, samesite: str) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, secure=provider().settings.secure_cookies,
                        samesite=samesite, path="/")


def clear_cookie(response: Any, name: str) -> None:
    response.delete_cookie(name, path="/", secure=provider().settings.secure_cookies, httponly=True)


# -- the administrator of this request ----------------------------------------------------


@dataclass
class Admin:
    """The logged-in administrator, set by the guard for every non-public console view."""

    cookie: str
    session: ConsoleSession
    username: str | None
    actor: Actor

    @property
    def account_id(self) -> int:
        return self.session.account_id

    @property
    def roles(self) -> frozenset[str]:
        return self.actor.roles

    @property
    def permissions(self) -> frozenset[Permission]:
        return permissions_of(self.actor.roles)

    def can(self, permission: Permission | str) -> bool:
        return permission == ANY_ADMIN or permission in self.permissions


def current_admin() -> Admin:
    admin: Admin = g.console_admin
    return admin


def check_csrf(admin: Admin) -> bool:
    # OWASP ASVS 5 §3.5: synchroniser token kept in the server-side console session.
    sent = request.form.get("csrf_token", "")
    return bool(sent) and constant_time_equals(sent, admin.session.csrf)


# -- locale and rendering -------------------------------------------------------------


def locale() -> str:
    explicit = request.args.get("lang") or request.form.get("lang")
    admin = g.get("console_admin")
    stored = [admin.session.locale] if admin is not None and admin.session.locale else []
    accept = [lang for lang, _ in request.accept_languages]
    return choose_locale(([explicit] if explicit else []) + stored, accept)


# Areas in the navigation: (endpoint, label, permission to read it).
NAV: tuple[tuple[str, str, Permission], ...] = (
    ("console.clients", "nav.clients", Permission.CLIENTS_READ),
    ("console.keys", "nav.keys", Permission.KEYS_READ),
    ("console.cas", "nav.cas", Permission.CAS_READ),
    ("console.legal_persons", "nav.legal", Permission.LEGAL_READ),
    ("console.audit", "nav.audit", Permission.AUDIT_READ),
    ("console.alerts", "nav.alerts", Permission.AUDIT_READ),
    ("console.accounts", "nav.accounts", Permission.ACCOUNTS_READ),
)

# The alert count beside "Alerts" in the navigation: computed at most once per
# ALERT_BADGE_TTL seconds for all instances (shared store), so a busy console costs a
# few grouped, index-served queries per half minute, not per page.
ALERT_BADGE_TTL = 30
_ALERT_BADGE_KEY = "console-alert-count"


def alert_badge(admin: Admin) -> int:
    """How many alerts are active (possibly ALERT_BADGE_TTL seconds old)."""
    store = provider().store
    cached = store.get(_ALERT_BADGE_KEY)
    if cached is not None and cached.isdigit():
        return int(cached)
    count = len(admin_services().audit.alerts(admin.actor))
    store.set(_ALERT_BADGE_KEY, str(count).encode(), ALERT_BADGE_TTL)
    return count


def render(template: str, status: int = 200, **ctx: Any) -> tuple[str, int]:
    loc = locale()
    admin = g.get("console_admin")
    nav = [(endpoint, label) for endpoint, label, perm in NAV
           if admin is not None and admin.can(perm) and endpoint in current_app.view_functions]
    badges = {"console.alerts": alert_badge(admin)} if any(e == "console.alerts" for e, _ in nav) else {}
    return (
        render_template(
            template,
            _=lambda key: translate(key, loc),
            lang=loc,
            admin=admin,
            csrf_token=admin.session.csrf if admin is not None else "",
            nav=nav,
            badges=badges,
            lang_url=_lang_url,
            can=(admin.can if admin is not None else (lambda _p: False)),
            P=Permission,
            **ctx,
        ),
        status,
    )


def _lang_url(code: str) -> str:
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return request.path + "?" + urlencode(args, doseq=True)


def see_other(location: str) -> Any:
    """303 after every POST (RFC 9110 §15.4.4): the browser follows with a GET."""
    return redirect(location, code=303)


# -- secrets shown once ------------------------------------------------------------------

# A new client secret crosses the 303 after its POST through the store: encrypted, bound
# to this console session, readable once, for two minutes.
SHOWN_TTL = 120


def _shown_key(token: str) -> str:
    return "console-shown:" + provider().hasher.digest("console-shown", f"{current_admin().cookie}:{token}")


def show_once(secret: str | None) -> str | None:
    """Park ``secret`` for the next page of this session; returns the token for its URL."""
    if secret is None:
        return None
    token = random_token(16)
    p = provider()
    p.store.set(_shown_key(token), p.cipher.encrypt(secret, "console-shown").encode(), SHOWN_TTL)
    return token


def shown_once(token: str | None) -> str | None:
    """The parked secret, removed as it is read (a reload shows nothing)."""
    if not token or len(token) > 64:
        return None
    raw = provider().store.consume(_shown_key(token))
    if raw is None:
        return None
    return provider().cipher.decrypt(raw.decode(), "console-shown").decode()


# -- the token request ----------------------------------------------------------------


def exchange_code(form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST the token request to this provider's own token endpoint, in process.

    Why this way: the console must be an ordinary relying party, so the code goes through
    the same /token view, client authentication, PKCE check, code-replay tombstone,
    audit events and ID token issuance as any portal's, not through a shortcut into the
    token service. Dispatching the request through the WSGI application (with a fresh
    application context, hence its own database session and transaction, committed by
    the token view as for any client) gives exactly that without a network round trip
    to ourselves, which behind a load balancer could need an egress path and TLS trust
    the instance does not have. The request carries the current request id, so the two
    log lines can be joined.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    issuer = provider().settings.issuer
    request_id = str(g.get("request_id", ""))
    with app.app_context():
        response = WsgiClient(app.wsgi_app).post(
            ENDPOINTS["token"], base_url=issuer, data=form, headers={**headers, "X-Request-Id": request_id},
        )
    try:
        body = json.loads(response.get_data(as_text=True))
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


__all__ = [
    "ANY_ADMIN", "Admin", "admin_services", "check_csrf", "clear_cookie", "current_admin", "declared_permission", "exchange_code",
    "is_public", "locale", "login_cookie_name", "login_service", "provider", "public", "render",
    "requires", "see_other", "services", "session_cookie_name", "session_store", "set_cookie", "show_once", "shown_once",
]
