"""Browser pages: login, consent, logout, account home. Server-rendered, no script
needed, CSRF token on every form, 303 after every POST."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, g, make_response, redirect, request, session, url_for
from werkzeug.exceptions import HTTPException

from common.crypto import constant_time_equals
from common.db import db
from common.errors import DomainError

from ..catalogue import CATALOGUE
from ..clients import ADMIN_SCOPE
from ..errors import InvalidCredentialsError
from ..i18n import error_text
from ..login import LoginRequest
from ..oauth_errors import AccessDeniedError
from ..pending_steps import LOGOUT_REQUEST
from ..release import decide_consent
from . import bp
from ._web import (
    allow_form_target,
    check_csrf,
    clear_sso_cookie,
    client_ip,
    complete_login,
    deliver_logouts,
    drop_interaction,
    load_interaction,
    locale,
    provider,
    render,
    save_step,
    services,
    sso_cookie,
    take_step,
)
from .oauth import _origin, _with_params, consent_offer, mark_consent_done, pending_request, redirect_error
from .second_factor import start_second_factor


def _see_other(location: str) -> Any:
    return redirect(location, code=303)


# A path of unreserved characters only (RFC 3986 §2.3): no whitespace or control
# characters (browsers strip tab, CR and LF, so "/\t/evil" becomes "//evil"), no
# backslash, no percent-encoding of either, no query, fragment or scheme.
_NEXT_CHARS = re.compile(r"/[A-Za-z0-9._~/-]{0,199}")


def _safe_next(value: str | None) -> str:
    """Only one of our own pages: never an open redirect (OWASP ASVS 5 §5.1.5, CWE-601).

    Policy: an allow-list, not a pattern of "local-looking" paths: the value must name a
    page of ours that answers GET, the home page, the company page or the account area
    (the paths ``_login_first`` sends). Anything else returns home ("")."""
    if not value or not _NEXT_CHARS.fullmatch(value) or value.startswith("//"):
        return ""
    try:
        rule, _ = current_app.url_map.bind("localhost").match(value, method="GET", return_rule=True)
    except HTTPException:  # no such page, not a GET page, or a redirect to a canonical URL
        return ""
    path = rule.rule
    if path in ("/", "/company", "/account") or path.startswith("/account/"):
        return value
    return ""


# -- login ----------------------------------------------------------------------------


@bp.get("/login")
def login() -> Any:
    iid = request.args.get("interaction")
    record = load_interaction(iid) if iid else None
    req = pending_request(record) if record else None
    if iid and req is None:
        return render("idp/error.html", 400, error="interaction_expired")
    if req is not None:
        allow_form_target(req.redirect_uri)
    return render(
        "idp/login.html",
        next=_safe_next(request.args.get("next")),
        interaction=iid or "",
        client_name=req.client.name if req else None,
        login_hint=req.login_hint if req else "",
        ui_locales=req.ui_locales if req else None,
        error=None,
    )


@bp.post("/login")
def login_submit() -> Any:
    iid = request.form.get("interaction") or ""
    record = load_interaction(iid) if iid else None
    req = pending_request(record) if record else None
    if iid and req is None:
        return render("idp/error.html", 400, error="interaction_expired")
    if req is not None:
        allow_form_target(req.redirect_uri)
    form_ctx: dict[str, Any] = {
        "next": _safe_next(request.form.get("next")),
        "interaction": iid,
        "client_name": req.client.name if req else None,
        "login_hint": request.form.get("identifier", "")[:128],
        "ui_locales": req.ui_locales if req else None,
    }
    if not check_csrf():
        return render("idp/login.html", 400, error="csrf.expired", **form_ctx)
    identifier = request.form.get("identifier", "").strip()
    password = request.form.get("password", "")
    svc = services()
    try:
        # A control character (NUL fails in PostgreSQL) is in no identifier.
        if not identifier or not password or len(identifier) > 128 or not identifier.isprintable():
            raise InvalidCredentialsError("empty, oversized or unprintable field")
        result = svc.accounts.authenticate_password(identifier, password, client_ip=client_ip())
    except InvalidCredentialsError as exc:
        provider().metrics.login(False)
        g.log_extra = {"login_failure": exc.code}
        # The failure is audited even though the login fails: commit just that event.
        svc.audit.record("login.failure", actor="anonymous", outcome="denied", reason=exc.code,
                         target=f"account:{exc.account_id}" if exc.account_id else None,
                         client_id=req.client.client_id if req else None, ip=client_ip())
        db.session.commit()
        # One text for every subclass (unknown user, wrong password, lockout): ASVS 5 §6.3.
        text = error_text("invalid_credentials", exc.public_message, locale())
        return render("idp/login.html", 401, error_text=text, error=None, **form_ctx)
    actor, client_id = f"account:{result.account_id}", req.client.client_id if req else None
    if svc.realname.has_totp(result.account_id):
        # Issue 3: an account with an authenticator always completes the second factor.
        svc.audit.record("login.password", actor=actor, client_id=client_id, ip=client_ip(),
                         details={"second_factor": "required"})
        db.session.commit()
        return start_second_factor(result.account_id, iid or None, stepup=False)
    target = url_for("idp.authorize_resume", interaction=iid) if iid else (form_ctx["next"] or url_for("idp.home"))
    return complete_login(LoginRequest(
        account_id=result.account_id, subject_seed=result.subject_seed, methods=tuple(result.amr),
        path="password", cookie=sso_cookie(), ip=client_ip(), client_id=client_id), target)


# -- consent --------------------------------------------------------------------------


def _claim_rows(req: Any, names: tuple[str, ...], declined: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """What the page says about each claim: its description and, with a release policy,
    the purpose the portal registered (PIPL Art. 17: purpose before consent)."""
    loc = locale(req.ui_locales)
    rows = []
    for name in names:
        claim = CATALOGUE[name]
        spec = req.client.claim_policy.get(name, {})
        rows.append({"name": name, "text": claim.en if loc == "en" else claim.zh,
                     "purpose": spec.get("purpose"), "checked": name not in declined})
    return rows


@bp.get("/consent")
def consent() -> Any:
    iid = request.args.get("interaction")
    record = load_interaction(iid)
    req = pending_request(record) if record else None
    if req is None:
        return render("idp/error.html", 400, error="interaction_expired")
    sso = services().sessions.get(sso_cookie())
    if sso is None:
        return _see_other(url_for("idp.authorize_resume", interaction=iid))
    allow_form_target(req.redirect_uri)
    # Issue 5: each claim with its purpose; optional ones can be unticked, required and
    # statutory ones are explained, sensitive ones stand apart with their own
    # confirmation; claims agreed before are not asked again.
    _, state, offer = consent_offer(req, sso.account_id)
    return render(
        "idp/consent.html", interaction=iid, client_name=req.client.name, ui_locales=req.ui_locales,
        required=_claim_rows(req, offer.required), statutory=_claim_rows(req, offer.statutory),
        optional=_claim_rows(req, offer.optional, state.declined), sensitive=_claim_rows(req, offer.sensitive),
        already=_claim_rows(req, offer.already),
        offline="offline_access" in req.scope.split(),
        # Issue 17: administrative access is shown apart and approved every time.
        admin=ADMIN_SCOPE in req.scope.split(),
    )


@bp.post("/consent")
def consent_submit() -> Any:
    iid = request.form.get("interaction", "")
    record = load_interaction(iid)
    req = pending_request(record) if record else None
    if req is None or record is None:
        return render("idp/error.html", 400, error="interaction_expired")
    if not check_csrf():
        return render("idp/error.html", 400, error="csrf")
    allow_form_target(req.redirect_uri)
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    if sso is None:
        return _see_other(url_for("idp.authorize_resume", interaction=iid))
    if request.form.get("decision") != "allow":
        drop_interaction(iid)
        svc.audit.record("consent.deny", actor=f"account:{sso.account_id}", outcome="denied", reason="user_denied",
                         client_id=req.client.client_id)
        db.session.commit()
        return redirect_error(req.redirect_uri, req.response_mode, req.state, AccessDeniedError())
    # The offer is recomputed, so only claims this request asks for can be agreed to.
    _, _, offer = consent_offer(req, sso.account_id)
    agreed, declined, confirmed = decide_consent(
        offer, set(request.form.getlist("claim")), request.form.get("sensitive_confirm") == "yes"
    )
    svc.consents.grant(sso.account_id, req.client.client_id, req.scope.split(), agreed=agreed, declined=declined)
    svc.audit.record("consent.grant", actor=f"account:{sso.account_id}", client_id=req.client.client_id,
                     details={"scopes": sorted(set(req.scope.split())), "claims": sorted(agreed),
                              "declined": sorted(declined), "sensitive_confirmed": sorted(confirmed)})
    db.session.commit()
    mark_consent_done(iid, record, confirmed)
    return _see_other(url_for("idp.authorize_resume", interaction=iid))


# -- account home ---------------------------------------------------------------------


@bp.get("/")
def home() -> Any:
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    username = None
    if sso is not None:
        account = svc.accounts.get(sso.account_id)
        username = account.username
    return render("idp/home.html", signed_in=sso is not None, username=username)


# -- logout (OIDC RP-Initiated Logout 1.0) --------------------------------------------


def _logout_target(params: Any) -> tuple[str | None, str | None, Any]:
    """Validate id_token_hint, client_id and post_logout_redirect_uri.

    Returns (error, redirect URI or None, hint claims or None)."""
    svc = services()
    hint = params.get("id_token_hint")
    claims = svc.tokens.decode_id_token(hint) if hint else None
    if hint and claims is None:
        # §2: an invalid hint, or another kind of our tokens (an access or logout token),
        # is not trusted; ask for confirmation, redirect nowhere.
        return None, None, None
    aud = claims.get("aud") if claims else None
    aud = aud[0] if isinstance(aud, list) and len(aud) == 1 else aud
    client_id = params.get("client_id") or aud
    if claims and params.get("client_id") and params.get("client_id") != aud:
        return "client_mismatch", None, None
    plr = params.get("post_logout_redirect_uri")
    if plr:
        client = svc.client(client_id) if isinstance(client_id, str) else None
        # §3: the URI must exactly match one registered for the client.
        if client is None or plr not in client.post_logout_redirect_uris:
            return "invalid_post_logout_redirect_uri", None, claims
    return None, plr, claims


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    params = request.args if request.method == "GET" else request.form
    error, plr, hint = _logout_target(params)
    if error:
        return render("idp/error.html", 400, error=error)
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    state = params.get("state")
    if hint is not None and (sso is None or constant_time_equals(str(hint.get("sid", "")), sso.sid)):
        return _finish_logout(plr, state)
    # Confirmation (§2): remember the validated request for this browser only.
    lid = save_step(LOGOUT_REQUEST, {"plr": plr if hint is not None else None, "state": state})
    if plr and hint is not None:
        allow_form_target(plr)
    return render("idp/logout_confirm.html", logout_request=lid, signed_in=sso is not None)


@bp.post("/logout/confirm")
def logout_confirm() -> Any:
    if not check_csrf():
        return render("idp/error.html", 400, error="csrf")
    lid = request.form.get("logout_request", "")
    # Single use, and only for the browser it was shown to.
    data = take_step(LOGOUT_REQUEST, lid) or {}
    if data.get("plr"):
        allow_form_target(data["plr"])
    if request.form.get("decision") != "logout":
        return render("idp/home.html", signed_in=services().sessions.get(sso_cookie()) is not None, username=None)
    return _finish_logout(data.get("plr"), data.get("state"))


def _finish_logout(plr: str | None, state: str | None) -> Any:
    svc = services()
    sso = svc.sessions.end(sso_cookie())
    frontchannel: list[str] = []
    deliveries = []
    if sso is not None:
        # Issue 17: logout revokes the session's tokens too (offline_access grants aside).
        deliveries = svc.logout.ended([sso])
        frontchannel = svc.logout.frontchannel_urls(sso)
        svc.audit.record("logout", actor=f"account:{sso.account_id}", ip=client_ip(),
                         details={"reason": "user", "sid": sso.sid, "clients": len(sso.clients)})
    db.session.commit()
    deliver_logouts(deliveries)
    target = None
    if plr:
        target = _with_params(plr, [("state", state)] if state is not None else [])
    session.pop("csrf", None)
    if target and not frontchannel:
        response = _see_other(target)
    else:
        g.csp_frame_src = sorted({_origin(u) for u in frontchannel})
        body, status = render("idp/logged_out.html", frontchannel=frontchannel, target=target)
        response = make_response(body, status)
    clear_sso_cookie(response)
    return response


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> Any:
    return render("idp/error.html", exc.status_code, error=exc.code)
