"""Registration (issue 3): registry verification of name and ID number, an SMS code to the
phone, then the account, its verified identity and the first login."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from common.db import db
from realname.errors import (
    DuplicateIdentityError,
    RealnameInputError,
    RegistrationThrottledError,
    RegistryUnavailableError,
    VerificationFailedError,
    VerificationThrottledError,
)
from realname.service import parse_identity_input

from ..accounts import check_username, normalize_phone
from ..errors import DuplicateAccountError
from ..login import LoginRequest
from ..passwords import WeakPasswordError, validate_password
from ..pending_steps import REGISTRATION
from . import bp
from ._citizen import client_of, error_message, masked_phone, message, next_after, see_other, send_sms
from ._web import check_csrf, client_ip, complete_login, drop_step, load_step, render, save_step, services, sso_cookie


@bp.get("/register")
def register() -> Any:
    iid = request.args.get("interaction", "")
    return render("idp/register.html", form={}, errors={}, error=None, interaction=iid)


@bp.post("/register")
def register_submit() -> Any:
    """Issue 17 (OWASP ASVS 5 §2.4, §6.3.8): per-IP throttle first, then the input, the
    registry check (throttled per ID number and IP), then the SMS code. Whether a phone,
    username or ID number is already taken is looked at only after the code was right
    (``register_confirm_submit``), so this step answers the same for taken and free ones."""
    form = {k: request.form.get(k, "")[:64] for k in ("name", "id_number", "phone", "username")}
    iid = request.form.get("interaction", "")

    def again(status: int, error: str | None = None, errors: dict[str, str] | None = None) -> Any:
        return render("idp/register.html", status, form=form, errors=errors or {}, error=error, interaction=iid)

    svc = services()
    try:
        svc.realname.throttle_registration(client_ip())
    except RegistrationThrottledError as exc:
        return again(exc.status_code, error_message(exc))
    if not check_csrf():
        return again(400, message("csrf.expired"))
    today = svc.p.clock.now().date()
    try:
        name, rid = parse_identity_input(form["name"], form["id_number"], today=today)
    except RealnameInputError as exc:
        return again(400, errors={exc.field: exc.public_message})
    phone = normalize_phone(form["phone"])
    if phone is None:
        return again(400, errors={"phone": message("bad_phone")})
    password = request.form.get("password", "")
    username = form["username"].strip() or None
    if username and not check_username(username):
        return again(400, errors={"username": message("bad_username")})
    try:
        validate_password(password, context=tuple(x for x in (username, phone, rid.number) if x))
    except WeakPasswordError as exc:
        return again(400, errors={"password": exc.public_message})
    try:
        svc.realname.check_registry(
            name, rid, account_key="register:" + svc.realname.id_index(rid.number), client_ip=client_ip(),
            client_id=client_of(iid),
        )
    except RegistryUnavailableError as exc:
        # Issue 3: registry down → a clear page, nothing written but the audit event, the
        # form kept for a retry.
        db.session.commit()
        return again(503, error_message(exc))
    except (VerificationFailedError, VerificationThrottledError) as exc:
        db.session.commit()  # the audit event only
        return again(exc.status_code if isinstance(exc, VerificationThrottledError) else 400, error_message(exc))
    pid = save_step(REGISTRATION, {
        "name": name, "id_number": rid.number, "phone": phone, "username": username,
        "password_hash": svc.p.passwords.hash(password), "interaction": iid,
    })
    failure = send_sms("register", pid, phone)
    if failure:
        drop_step(REGISTRATION, pid)
        db.session.commit()  # the registry check's audit event
        return again(429 if failure == "otp_throttled" else 503, message(failure))
    db.session.commit()  # the throttling counters only; no account yet
    return see_other(url_for("idp.register_confirm", pending=pid))


@bp.get("/register/confirm")
def register_confirm() -> Any:
    pid = request.args.get("pending", "")
    data = load_step(REGISTRATION, pid)
    if data is None:
        return render("idp/error.html", 400, error="registration_expired")
    return render("idp/register_confirm.html", pending=pid, masked_phone=masked_phone(data["phone"]), error=None)


@bp.post("/register/confirm")
def register_confirm_submit() -> Any:
    pid = request.form.get("pending", "")
    data = load_step(REGISTRATION, pid)
    if data is None:
        return render("idp/error.html", 400, error="registration_expired")
    page: dict[str, Any] = {"pending": pid, "masked_phone": masked_phone(data["phone"])}
    if not check_csrf():
        return render("idp/register_confirm.html", 400, error=message("csrf.expired"), **page)
    svc = services()
    if not svc.otp.verify("register", pid, request.form.get("code", "")[:12]):
        return render("idp/register_confirm.html", 400, error=message("bad_code"), **page)
    today = svc.p.clock.now().date()
    name, rid = parse_identity_input(data["name"], data["id_number"], today=today)
    # Issue 17 / OWASP ASVS 5 §6.3.8: duplicates are looked at only here, after the
    # registry check and the phone proof, and answered alike whichever detail is taken.
    username = data["username"]
    if (svc.realname.account_for_id_number(rid.number) is not None
            or svc.accounts.find_by_identifier(data["phone"]) is not None
            or (username and svc.accounts.find_by_identifier(username) is not None)):
        return _registration_taken(pid, data)
    try:
        account = svc.accounts.create(
            username=username, password=None, password_hash=data["password_hash"], phone=data["phone"]
        )
        svc.accounts.mark_phone_verified(account)
        identity = svc.realname.bind_identity(account.id, name, rid)
        svc.accounts.set_verified_name(account, name)
    except (DuplicateAccountError, DuplicateIdentityError):
        # The unique constraints stay the final guard (a concurrent registration).
        db.session.rollback()
        return _registration_taken(pid, data)
    svc.audit.record("account.register", actor=f"account:{account.id}", ip=client_ip())
    try:
        # 三要素: the carrier confirms the phone is this person's → a bound factor (cn-l2).
        svc.realname.bind_phone(identity, data["phone"], client_ip=client_ip())
    except (RegistryUnavailableError, VerificationThrottledError):
        pass  # the phone stays verified by SMS but unbound; the account page offers a retry
    drop_step(REGISTRATION, pid)
    return complete_login(LoginRequest(
        account_id=account.id, subject_seed=account.subject_seed, methods=("pwd", "sms"), path="registration",
        cookie=sso_cookie(), ip=client_ip()), next_after(data.get("interaction") or None))


def _registration_taken(pid: str, data: dict[str, Any]) -> Any:
    """Nothing was created: the registration form again, filled in with what the citizen
    typed (all but the password), one message for every kind of duplicate and a way to log
    in. The pending step ends: its code is used, and another try needs a new proof."""
    drop_step(REGISTRATION, pid)
    services().audit.record("account.register", actor="anonymous", outcome="denied", reason="duplicate",
                            ip=client_ip())
    db.session.commit()  # the audit event only
    form = {"name": data["name"], "id_number": data["id_number"], "phone": data["phone"],
            "username": data["username"] or ""}
    return render("idp/register.html", 409, form=form, errors={}, error=message("duplicate_registration"),
                  interaction=data.get("interaction", ""), duplicate=True)
