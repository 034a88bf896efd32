"""Request helpers shared by the views: services, CSRF, locale, cookies, pending steps."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import current_app, g, redirect, render_template, request, session
from werkzeug.datastructures import MultiDict

from common.crypto import constant_time_equals, random_token
from common.db import db
from common.errors import DomainError
from common.throttle import Throttle

from ..authorize import PARAMETER_LIMITS
from ..i18n import choose_locale, translate
from ..login import LoginRequest
from ..pending_steps import INTERACTION, PendingStepStore, StepKind
from ..provider import Provider, Services
from ..server import YiwangServer, request_services


def provider() -> Provider:
    value: Provider = current_app.extensions["yiwang.provider"]
    return value


def services() -> Services:
    return request_services()


def oauth_server() -> YiwangServer:
    value: YiwangServer = current_app.extensions["yiwang.server"]
    return value


def client_ip() -> str:
    # ProxyFix (configured with the number of trusted proxies) has already set this.
    return request.remote_addr or "unknown"


# -- CSRF (OWASP ASVS 5 §3.5: synchroniser token in the signed UI cookie) -------------


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = random_token(24)
    return str(session["csrf"])


def check_csrf() -> bool:
    sent = request.form.get("csrf_token", "")
    expected = str(session.get("csrf", ""))
    return bool(expected) and bool(sent) and constant_time_equals(sent, expected)


def browser_id() -> str:
    if "bid" not in session:
        session["bid"] = random_token(16)
    return str(session["bid"])


def allow_form_target(uri: str) -> None:
    """Add the origin of ``uri`` to this response's CSP form-action: Chromium applies
    form-action to the redirects that follow a form submission, and login and consent
    forms end in a redirect to the client."""
    parts = urlsplit(uri)
    g.setdefault("csp_form_action", set()).add(f"{parts.scheme}://{parts.netloc}")


# -- locale ---------------------------------------------------------------------------


def locale(ui_locales: list[str] | None = None) -> str:
    accept = [lang for lang, _ in request.accept_languages]
    explicit = request.args.get("lang") or request.form.get("lang")
    return choose_locale(([explicit] if explicit else []) + (ui_locales or []), accept)


def render(template: str, status: int = 200, *, ui_locales: list[str] | None = None, **ctx: Any) -> tuple[str, int]:
    loc = ctx.pop("loc", None) or locale(ui_locales)
    return (
        render_template(
            template,
            _=lambda key: translate(key, loc),
            lang=loc,
            csrf_token=csrf_token(),
            lang_url=_lang_url,
            **ctx,
        ),
        status,
    )


def _lang_url(code: str) -> str:
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return request.path + "?" + urlencode(args, doseq=True)


def deliver_logouts(deliveries: list[Any]) -> None:
    """Back-Channel Logout §2.5: send the logout tokens scheduled by a change that has
    committed; failures stay pending for ``flask logout deliver``. Commits."""
    if deliveries:
        for row in deliveries:
            services().logout.deliver(row)
        db.session.commit()


# -- SSO cookie -----------------------------------------------------------------------


def sso_cookie_name() -> str:
    # The __Host- prefix (RFC 6265bis §4.1.3.2) pins the cookie to this host over https.
    return "__Host-yiwang_sso" if provider().settings.secure_cookies else "yiwang_sso"


def sso_cookie() -> str | None:
    return request.cookies.get(sso_cookie_name())


def set_sso_cookie(response: Any, value: str) -> None:
    response.set_cookie(
        sso_cookie_name(),
        value,
        httponly=True,
        secure=provider().settings.secure_cookies,
        samesite="Lax",
        path="/",
    )


def complete_login(login: LoginRequest, target: str) -> Any:
    """What every login path ends with (issue 11): the service layer continues or starts
    the SSO session and audits the login (``idp.login``); then commit, send the logout
    tokens of a session it ended, give the UI a new CSRF token and set the new cookie on a
    303 to ``target``."""
    result = services().logins.complete(login)
    db.session.commit()
    deliver_logouts(result.deliveries)
    session.pop("csrf", None)
    response = redirect(target, code=303)
    set_sso_cookie(response, result.cookie)
    return response


def clear_sso_cookie(response: Any) -> None:
    response.delete_cookie(
        sso_cookie_name(), path="/", secure=provider().settings.secure_cookies, httponly=True, samesite="Lax"
    )


# -- pending steps: authorization requests, registrations, second factors, logouts ---


class InteractionThrottledError(DomainError):
    """Too many new pending authorization requests from one client IP (issue 17)."""

    code = "too_many_requests"
    public_message = "Too many sign-in attempts from your network. Please wait a few minutes."
    status_code = 429


def pending_steps() -> PendingStepStore:
    prov = provider()
    return PendingStepStore(prov.store, prov.cipher)


def save_step(kind: StepKind, data: dict[str, Any]) -> str:
    """Park a step of a multi-page flow for this browser (``idp.pending_steps``)."""
    return pending_steps().save(kind, data, browser=browser_id())


def load_step(kind: StepKind, step_id: str | None) -> dict[str, Any] | None:
    """The step, only for the browser that started it (a browser without a ``bid`` has none)."""
    return pending_steps().load(kind, step_id, browser=str(session.get("bid", "")))


def take_step(kind: StepKind, step_id: str | None) -> dict[str, Any] | None:
    """Load and end a single-use step."""
    return pending_steps().take(kind, step_id, browser=str(session.get("bid", "")))


def update_step(kind: StepKind, step_id: str, record: dict[str, Any]) -> None:
    pending_steps().update(kind, step_id, record)


def drop_step(kind: StepKind, step_id: str) -> None:
    pending_steps().drop(kind, step_id)


def save_interaction(params: MultiDict[str, str], *, created_at: int, consent_done: bool = False) -> str:
    """Park an authorization request (already validated by ``parse_request``) while the
    citizen logs in or consents. Issue 17: only the parameters the provider reads are
    kept (each capped by ``PARAMETER_LIMITS``), and new interactions are rate-limited per
    client IP, so nobody can fill the shared store. Raises ``InteractionThrottledError``."""
    prov = provider()
    key = "interaction-rate:ip:" + prov.hasher.digest("interaction-ip", client_ip())
    if Throttle(store=prov.store, clock=prov.clock).hit(key, 3600) > prov.settings.interaction_max_per_ip_hour:
        raise InteractionThrottledError("interactions per IP")
    record = {
        "params": [(k, v) for k, v in params.items(multi=True) if k in PARAMETER_LIMITS],
        "created_at": created_at,
        "consent_done": consent_done,
    }
    return save_step(INTERACTION, record)


def load_interaction(iid: str | None) -> dict[str, Any] | None:
    """The pending request, only for the browser that started it."""
    record = load_step(INTERACTION, iid)
    if record is None:
        return None
    record["params"] = MultiDict(record["params"])
    return record


def update_interaction(iid: str, record: dict[str, Any]) -> None:
    data = dict(record)
    data["params"] = list(record["params"].items(multi=True))
    update_step(INTERACTION, iid, data)


def drop_interaction(iid: str) -> None:
    drop_step(INTERACTION, iid)
