"""Helpers shared by the citizen's own pages (issue 11: registration, second factor and
step-up, account): the signed-in account, SMS codes, checking a second factor, and where
a finished step goes next."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for

from common.errors import DomainError
from realname.otp import OtpThrottledError

from ..i18n import error_text
from ..models import Account
from ._web import client_ip, load_interaction, locale, provider, services, sso_cookie


def see_other(location: str) -> Any:
    # 303 after every POST, so a reload does not submit the form again.
    return redirect(location, code=303)


def error_message(exc: DomainError) -> str:
    """The error's fixed public text in the page's language (never its internal detail)."""
    return error_text(exc.code, exc.public_message, locale())


def message(code: str) -> str:
    """The text for a message code in the page's language."""
    return error_text(code, code, locale())


def masked_phone(phone: str) -> str:
    """Only the carrier prefix and the last four digits are shown on a page."""
    return phone[:3] + "****" + phone[-4:]


def next_after(iid: str | None) -> str:
    """Back to the authorization request that led here, or else the account page."""
    return url_for("idp.authorize_resume", interaction=iid) if iid else url_for("idp.account")


def send_sms(purpose: str, target: str, phone: str) -> str | None:
    """Issue and send a code; returns an error code for the form, or None. Issue 17:
    every send is throttled per destination phone and per client IP as well as per target."""
    try:
        code = services().otp.issue(purpose, target, phone=phone, client_ip=client_ip())
    except OtpThrottledError:
        return "otp_throttled"
    text = f"【一网】验证码 {code}，5 分钟内有效。请勿告诉他人。"
    return None if provider().sms.send(phone, text) else "sms_failed"


def current_account() -> tuple[Any, Account] | None:
    """This browser's SSO session and its account, when the account is still active."""
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    if sso is None:
        return None
    account = svc.session.get(Account, sso.account_id)
    if account is None or account.status != "active":
        return None
    return sso, account


def login_first() -> Any:
    # Back to this page after the login (``pages._safe_next`` allows the account paths).
    return see_other(url_for("idp.login", next=request.path))


def factor_used(svc: Any, account: Account, form: Any) -> str | None:
    """The RFC 8176 method of the code the form carries, if it is right: ``otp`` for a
    TOTP or recovery code, ``sms`` for an SMS code (never for administrators). None when
    no code is right."""
    totp, recovery, sms = (form.get(k, "").strip()[:20] for k in ("totp", "recovery", "sms"))
    if totp and svc.realname.verify_totp(account.id, totp):
        return "otp"
    if recovery and svc.realname.use_recovery_code(account.id, recovery):
        return "otp"  # a one-time password from the recovery list (RFC 8176 "otp")
    if sms and svc.sms_second_factor_allowed(account) and svc.otp.verify("login", f"acct:{account.id}", sms):
        return "sms"
    return None


def client_of(iid: str) -> str | None:
    """The portal whose authorization request led here, for the audit trail (issue 6:
    registry verification volume per client)."""
    record = load_interaction(iid) if iid else None
    client_id = record["params"].get("client_id") if record else None
    return str(client_id) if client_id else None
