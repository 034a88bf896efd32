"""Second factor after the password, and step-up to the level a portal asks for (issue 3,
issue 17): a TOTP, recovery or SMS code, counted per account, completing the login."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from common.db import db

from ..assurance import LEVELS, rank
from ..errors import SecondFactorLockedError
from ..login import LoginRequest
from ..models import Account
from ..pending_steps import SECOND_FACTOR
from . import bp
from ._citizen import current_account, factor_used, message, next_after, see_other, send_sms
from ._web import (
    allow_form_target,
    check_csrf,
    client_ip,
    complete_login,
    drop_step,
    load_interaction,
    load_step,
    render,
    save_step,
    services,
    sso_cookie,
    update_step,
)
from .oauth import pending_request

MFA_MAX_FAILURES = 5


def start_second_factor(account_id: int, iid: str | None, *, stepup: bool) -> Any:
    """Send the browser to the second-factor page for this account."""
    pid = save_step(SECOND_FACTOR, {"account_id": account_id, "interaction": iid or "", "stepup": stepup, "failures": 0})
    return see_other(url_for("idp.mfa", pending=pid))


def _mfa_page(pid: str, data: dict[str, Any], status: int = 200, error: str | None = None,
              notice: str | None = None) -> Any:
    svc = services()
    account = svc.session.get(Account, data["account_id"])
    iid = data.get("interaction") or None
    if iid:
        record = load_interaction(iid)
        req = pending_request(record) if record else None
        if req is not None:
            allow_form_target(req.redirect_uri)
    can_sms = bool(account and svc.sms_second_factor_allowed(account))
    return render("idp/mfa.html", status, pending=pid, has_totp=svc.realname.has_totp(data["account_id"]),
                  can_sms=can_sms, error=error, notice=notice)


@bp.get("/login/mfa")
def mfa() -> Any:
    pid = request.args.get("pending", "")
    data = load_step(SECOND_FACTOR, pid)
    if data is None:
        return render("idp/error.html", 400, error="login_expired")
    return _mfa_page(pid, data)


@bp.post("/login/mfa")
def mfa_submit() -> Any:
    pid = request.form.get("pending", "")
    data = load_step(SECOND_FACTOR, pid)
    if data is None:
        return render("idp/error.html", 400, error="login_expired")
    if not check_csrf():
        return _mfa_page(pid, data, 400, message("csrf.expired"))
    svc = services()
    account = svc.session.get(Account, data["account_id"])
    if account is None or account.status != "active":
        drop_step(SECOND_FACTOR, pid)
        return render("idp/error.html", 400, error="login_expired")
    if request.form.get("action") == "send_sms":
        phone = svc.accounts.phone_of(account)
        if not (phone and svc.sms_second_factor_allowed(account)):
            return _mfa_page(pid, data, 400, message("bad_phone"))
        failure = send_sms("login", f"acct:{account.id}", phone)
        if failure:
            return _mfa_page(pid, data, 429, message(failure))
        return _mfa_page(pid, data, notice=message("mfa.sms_sent"))
    try:
        # Issue 17: one per-account count of wrong codes, whatever the pending login.
        svc.accounts.check_second_factor_allowed(account.id)
    except SecondFactorLockedError:
        drop_step(SECOND_FACTOR, pid)
        svc.audit.record("mfa.failure", actor=f"account:{account.id}", outcome="denied", reason="locked",
                         ip=client_ip())
        db.session.commit()
        return render("idp/error.html", 429, error="too_many_attempts")
    used = factor_used(svc, account, request.form)
    if used is None:
        data["failures"] = int(data.get("failures", 0)) + 1
        locked = svc.accounts.count_second_factor_failure(account.id)
        too_many = locked or data["failures"] >= MFA_MAX_FAILURES
        # Audited and committed although the login does not go on.
        svc.audit.record("mfa.failure", actor=f"account:{account.id}", outcome="denied",
                         reason="too_many_attempts" if too_many else "bad_code",
                         ip=client_ip(), details={"attempt": data["failures"]})
        db.session.commit()
        if too_many:
            drop_step(SECOND_FACTOR, pid)
            return render("idp/error.html", 401, error="too_many_attempts")
        update_step(SECOND_FACTOR, pid, data)
        return _mfa_page(pid, data, 401, message("bad_code"))
    drop_step(SECOND_FACTOR, pid)
    svc.accounts.clear_second_factor_failures(account.id)
    svc.audit.record("mfa.success", actor=f"account:{account.id}", ip=client_ip(),
                     details={"factor": used, "stepup": bool(data.get("stepup"))})
    iid = data.get("interaction") or None
    methods: tuple[str, ...] = ("pwd", used)
    if data.get("stepup"):
        current = svc.sessions.get(sso_cookie())
        if current is not None and used in current.enrolled:
            # Issue 17: an authenticator enrolled in this session does not raise it; a new
            # login with it does (the session alone cannot vouch for its own factor).
            db.session.commit()
            return see_other(url_for("idp.login", interaction=iid) if iid else url_for("idp.account"))
        if current is None or current.account_id != account.id:
            db.session.commit()
            return see_other(next_after(iid))
        methods = (used,)
    return complete_login(LoginRequest(
        account_id=account.id, subject_seed=account.subject_seed, methods=methods,
        path="step_up" if data.get("stepup") else "second_factor", cookie=sso_cookie(), ip=client_ip()),
        next_after(iid))


# -- step-up ---------------------------------------------------------------------------


@bp.get("/stepup")
def stepup() -> Any:
    """Take the user through what the requested level still needs (issue 3): identity
    verification for cn-l1, a possession factor in this login for cn-l2, then back to
    the authorization request."""
    iid = request.args.get("interaction", "")
    record = load_interaction(iid)
    req = pending_request(record) if record else None
    if req is None:
        return render("idp/error.html", 400, error="interaction_expired")
    current = current_account()
    if current is None:
        return see_other(url_for("idp.authorize_resume", interaction=iid))
    sso, account = current
    svc = services()
    wanted = [v for v in req.acr_values if v in LEVELS]
    target = min(wanted, key=rank) if wanted else "cn-l0"
    if rank(svc.session_acr(account.id, sso.amr)) >= rank(target):
        return see_other(url_for("idp.authorize_resume", interaction=iid))
    identity = svc.realname.identity_of(account.id)
    if identity is None:
        allow_form_target(req.redirect_uri)
        return render("idp/verify.html", form={}, errors={}, error=None, interaction=iid)
    sms_bound = bool(identity.phone_bound_at) and svc.sms_second_factor_allowed(account)
    if svc.realname.has_totp(account.id):
        if "otp" in sso.enrolled and not sms_bound:
            # Issue 17: the authenticator was enrolled in this very session, which cannot
            # vouch for it: a new login with the password and the authenticator can.
            return see_other(url_for("idp.login", interaction=iid))
        return start_second_factor(account.id, iid, stepup=True)
    if sms_bound:
        return start_second_factor(account.id, iid, stepup=True)
    # No bound factor yet: enrol an authenticator, then log in with it.
    return see_other(url_for("idp.totp", interaction=iid))
