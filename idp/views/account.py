"""The citizen's account pages (issue 3, issue 5): level and masked identity, identity
verification, phone, authenticator (TOTP enrolment), password, the portals data is shared
with (consent withdrawal) and the data-sharing history."""

from __future__ import annotations

import json
from typing import Any

from flask import make_response, request, url_for
from markupsafe import Markup

from common.db import db
from realname.errors import (
    DuplicateIdentityError,
    RealnameInputError,
    RegistryUnavailableError,
    VerificationFailedError,
    VerificationThrottledError,
)
from realname.service import parse_identity_input
from realname.totp import new_secret, provisioning_uri, qr_svg

from ..errors import CurrentFactorRequiredError, InvalidCredentialsError, SecondFactorLockedError
from ..i18n import translate
from ..models import Account
from ..passwords import WeakPasswordError
from . import bp
from ._citizen import (
    client_of,
    current_account,
    error_message,
    factor_used,
    login_first,
    masked_phone,
    message,
    next_after,
    see_other,
    send_sms,
)
from ._web import check_csrf, client_ip, deliver_logouts, locale, render, services, set_sso_cookie, sso_cookie

# -- identity verification ---------------------------------------------------------------


@bp.get("/account/verify")
def verify() -> Any:
    if current_account() is None:
        return login_first()
    return render("idp/verify.html", form={}, errors={}, error=None, interaction="")


@bp.post("/account/verify")
def verify_submit() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, account = current
    iid = request.form.get("interaction", "")
    form = {k: request.form.get(k, "")[:64] for k in ("name", "id_number")}

    def again(status: int, error: str | None = None, errors: dict[str, str] | None = None) -> Any:
        return render("idp/verify.html", status, form=form, errors=errors or {}, error=error, interaction=iid)

    if not check_csrf():
        return again(400, message("csrf.expired"))
    svc = services()
    existing = svc.realname.identity_of(account.id)
    if existing is not None:
        # Re-run verification with the stored identity (account page).
        try:
            svc.realname.recheck(existing, client_ip=client_ip())
        except (RegistryUnavailableError, VerificationFailedError, VerificationThrottledError) as exc:
            db.session.commit()
            return see_other(url_for("idp.account", problem=exc.code))
        db.session.commit()
        return see_other(url_for("idp.account", saved=1))
    try:
        name, rid = parse_identity_input(form["name"], form["id_number"], today=svc.p.clock.now().date())
        svc.realname.check_registry(name, rid, account_key=f"acct:{account.id}", client_ip=client_ip(),
                                    client_id=client_of(iid))
        svc.realname.bind_identity(account.id, name, rid)
        svc.accounts.set_verified_name(account, name)
    except RealnameInputError as exc:
        return again(400, errors={exc.field: exc.public_message})
    except RegistryUnavailableError as exc:
        db.session.commit()  # nothing was written but the audit event
        return again(503, error_message(exc))
    except (VerificationFailedError, VerificationThrottledError, DuplicateIdentityError) as exc:
        db.session.commit()  # keep the rate-limit counters' effect; nothing else was written
        return again(exc.status_code, error_message(exc))
    phone = svc.accounts.phone_of(account)
    if phone and account.phone_verified_at:
        identity = svc.realname.identity_of(account.id)
        if identity is not None:
            try:
                svc.realname.bind_phone(identity, phone, client_ip=client_ip())
            except (RegistryUnavailableError, VerificationThrottledError):
                pass
    db.session.commit()
    if iid:
        return see_other(url_for("idp.stepup", interaction=iid))
    return see_other(url_for("idp.account", saved=1))


# -- account page ------------------------------------------------------------------------


# The problem codes our own redirects put on /account (the re-check in verify_submit).
# Policy: any other value is ignored, so a crafted link cannot show its own text (a fake
# support number, "your account is locked") as an alert on the genuine page.
ACCOUNT_PROBLEMS = frozenset(
    {RegistryUnavailableError.code, VerificationFailedError.code, VerificationThrottledError.code}
)


@bp.get("/account")
def account() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    if acct.kind == "organization":
        return see_other(url_for("idp.company"))
    svc = services()
    identity = svc.realname.identity_of(acct.id)
    phone = svc.accounts.phone_of(acct)
    return render(
        "idp/account.html",
        level=svc.realname.level_of(acct.id),
        identity=svc.realname.view(identity) if identity else None,
        phone=masked_phone(phone) if phone else None,
        phone_verified=acct.phone_verified_at is not None,
        has_totp=svc.realname.has_totp(acct.id),
        consents=_consent_rows(acct.id),
        notice=message("saved") if request.args.get("saved") else None,
        problem=message(request.args["problem"]) if request.args.get("problem") in ACCOUNT_PROBLEMS else None,
    )


@bp.get("/account/totp")
def totp() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    svc = services()
    secret = svc.realname.start_totp_enrollment(acct.id, new_secret())
    return _totp_page(acct, secret, request.args.get("interaction", ""))


def _totp_page(acct: Account, secret: str, iid: str, status: int = 200, error: str | None = None) -> Any:
    label = acct.username or f"account-{acct.subject_seed[:6]}"
    return render("idp/totp.html", status, qr=Markup(qr_svg(provisioning_uri(secret, label))), secret=secret,  # noqa: S704 - SVG we generated
                  interaction=iid, error=error, replacing=services().realname.has_totp(acct.id))


@bp.post("/account/totp")
def totp_submit() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    iid = request.form.get("interaction", "")
    svc = services()
    if not check_csrf():
        return render("idp/error.html", 400, error="csrf")
    secret = svc.realname.pending_totp_secret(acct.id)
    if secret is None:
        return see_other(url_for("idp.totp", interaction=iid))
    replacing = svc.realname.has_totp(acct.id)
    if replacing:
        # Issue 17: replacing an authenticator needs the current one (a code or a recovery
        # code), counted like every second-factor attempt; otherwise an administrator's
        # audited reset (admin.accounts.reset_mfa).
        try:
            svc.accounts.check_second_factor_allowed(acct.id)
        except SecondFactorLockedError as exc:
            return _totp_page(acct, secret, iid, 429, error_message(exc))
        if factor_used(svc, acct, {"totp": request.form.get("current", ""),
                                      "recovery": request.form.get("current", "")}) is None:
            svc.accounts.count_second_factor_failure(acct.id)
            svc.audit.record("mfa.failure", actor=f"account:{acct.id}", outcome="denied",
                             reason="current_factor_required", ip=client_ip(), details={"purpose": "replace"})
            db.session.commit()
            return _totp_page(acct, secret, iid, 400, error_message(CurrentFactorRequiredError()))
    codes = svc.realname.confirm_totp(acct.id, request.form.get("code", "")[:12])
    if codes is None:
        return _totp_page(acct, secret, iid, 400, message("bad_code"))
    # Issue 17: the new authenticator does not raise this session's amr/acr (the session
    # is as strong as the login that made it); it counts from the next login.
    sso = svc.sessions.mark_enrolled(sso_cookie(), "otp")
    svc.audit.record("mfa.enroll", actor=f"account:{acct.id}", target=f"account:{acct.id}", ip=client_ip(),
                     details={"factor": "totp", "replaced": replacing})
    deliveries = svc.credentials_changed(acct, keep_sid=sso.sid if sso else None, change="totp",
                                         client_ip=client_ip())
    db.session.commit()
    deliver_logouts(deliveries)
    body, status = render("idp/recovery_codes.html", codes=codes, next_url=next_after(iid or None))
    return make_response(body, status)


@bp.get("/account/phone")
def phone() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    number = services().accounts.phone_of(current[1])
    return render("idp/phone.html", masked_phone=masked_phone(number) if number else "—", error=None, notice=None)


@bp.post("/account/phone")
def phone_submit() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    svc = services()
    number = svc.accounts.phone_of(acct)
    page: dict[str, Any] = {"masked_phone": masked_phone(number) if number else "—"}
    if not check_csrf():
        return render("idp/phone.html", 400, error=message("csrf.expired"), notice=None, **page)
    if not number:
        return render("idp/phone.html", 400, error=message("bad_phone"), notice=None, **page)
    if request.form.get("action") == "send":
        failure = send_sms("phone-verify", f"acct:{acct.id}", number)
        if failure:
            return render("idp/phone.html", 429, error=message(failure), notice=None, **page)
        return render("idp/phone.html", error=None, notice=message("mfa.sms_sent"), **page)
    if not svc.otp.verify("phone-verify", f"acct:{acct.id}", request.form.get("code", "")[:12]):
        return render("idp/phone.html", 400, error=message("bad_code"), notice=None, **page)
    svc.accounts.mark_phone_verified(acct)
    identity = svc.realname.identity_of(acct.id)
    if identity is not None and identity.phone_bound_at is None:
        try:
            svc.realname.bind_phone(identity, number, client_ip=client_ip())
        except (RegistryUnavailableError, VerificationThrottledError):
            pass
    db.session.commit()
    return see_other(url_for("idp.account", saved=1))


@bp.get("/account/password")
def password() -> Any:
    if current_account() is None:
        return login_first()
    return render("idp/password.html", error=None)


@bp.post("/account/password")
def password_submit() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    if not check_csrf():
        return render("idp/password.html", 400, error=message("csrf.expired"))
    svc = services()
    try:
        svc.accounts.change_password(acct, request.form.get("current", ""), request.form.get("new", ""))
    except InvalidCredentialsError as exc:
        return render("idp/password.html", 400, error=error_message(exc))
    except WeakPasswordError as exc:
        return render("idp/password.html", 400, error=exc.public_message)
    # Re-authentication: a new cookie value for this session.
    sso = svc.sessions.get(sso_cookie())
    result = svc.sessions.reauthenticate(sso_cookie(), add_amr=[], acr=sso.acr if sso else "cn-l0")
    # Issue 17: every other session ends and every refresh token dies; the owner is told.
    deliveries = svc.credentials_changed(acct, keep_sid=sso.sid if sso else None, change="password",
                                         client_ip=client_ip())
    db.session.commit()
    deliver_logouts(deliveries)
    response = see_other(url_for("idp.account", saved=1))
    if result is not None:
        set_sso_cookie(response, result[0])
    return response


@bp.post("/account/consents/<client_id>/withdraw")
def consent_withdraw(client_id: str) -> Any:
    """Issue 5 / PIPL Art. 15: withdrawing consent stops the portal's future access —
    its refresh tokens and the access tokens of those grants stop working now, and the
    next authorization asks again."""
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    if not check_csrf():
        return render("idp/error.html", 400, error="csrf")
    svc = services()
    if svc.consents.withdraw(acct.id, client_id[:64]):
        grants = svc.tokens.revoke_grants_of(acct.id, client_id[:64])
        svc.audit.record("consent.withdraw", actor=f"account:{acct.id}", target=f"account:{acct.id}",
                         client_id=client_id[:64], details={"grants_revoked": grants})
        db.session.commit()
    return see_other(url_for("idp.account", saved=1))


# -- data sharing history (issue 5) -------------------------------------------------------


def _claim_text(name: str) -> str:
    from ..catalogue import CATALOGUE

    if name == "sub":
        # Not a catalogue claim: always released (OIDC Core §5.3.2), pairwise per portal.
        return translate("claim.sub", locale())
    claim = CATALOGUE.get(name)
    if claim is None:
        return name
    return claim.en if locale() == "en" else claim.zh


def _consent_rows(acct_id: int) -> list[dict[str, Any]]:
    """Portals the citizen shares data with now (issue 5): what they agreed to, until when."""
    from ..catalogue import claims_for_scopes

    svc = services()
    rows = []
    for c in svc.consents.active(acct_id):
        client = svc.client(c.client_id)
        agreed = c.claims if c.claims is not None else sorted(claims_for_scopes(c.scopes))
        rows.append({"client_id": c.client_id, "portal": client.name if client else c.client_id,
                     "claim_texts": [_claim_text(n) for n in agreed],
                     "expires": c.expires_at.date().isoformat()})
    return rows


def _history_rows(acct_id: int, client_id: str | None) -> list[dict[str, Any]]:
    svc = services()
    rows = []
    for d in svc.disclosures.history(acct_id, client_id=client_id):
        client = svc.client(d.client_id)
        rows.append({
            "time": d.created_at.isoformat(timespec="seconds"),
            "client_id": d.client_id,
            "portal": client.name if client else d.client_id,
            "claims": d.claim_names,
            "claim_texts": [_claim_text(n) for n in d.claim_names],
            "purpose": d.purpose,
            "legal_basis": d.legal_basis,
            "token_id": d.token_id,
        })
    return rows


@bp.get("/account/history")
def history() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    client_id = request.args.get("client") or None
    rows = _history_rows(acct.id, client_id[:64] if client_id else None)
    portals = sorted({(r["client_id"], r["portal"]) for r in _history_rows(acct.id, None)}, key=lambda p: p[1])
    return render("idp/history.html", rows=rows, portals=portals, selected=client_id or "",
                  consents=_consent_rows(acct.id))


@bp.get("/account/history.json")
def history_export() -> Any:
    current = current_account()
    if current is None:
        return login_first()
    _, acct = current
    client_id = request.args.get("client") or None
    body = json.dumps({"disclosures": _history_rows(acct.id, client_id[:64] if client_id else None)},
                      ensure_ascii=False, indent=2)
    response = make_response(body, 200)
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="yiwang-data-sharing-history.json"'
    response.headers["Cache-Control"] = "no-store"
    return response
