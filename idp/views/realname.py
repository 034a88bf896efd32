"""Real-name pages (issue 3): registration with registry verification and an SMS code,
second factor at login, step-up for a client's requested level, and the citizen's
account page (level, masked identity, phone, authenticator, password)."""

from __future__ import annotations

import json
from typing import Any

from flask import make_response, redirect, request, url_for
from markupsafe import Markup

from common.db import db
from common.errors import DomainError
from realname.errors import (
    DuplicateIdentityError,
    RealnameInputError,
    RegistrationThrottledError,
    RegistryUnavailableError,
    VerificationFailedError,
    VerificationThrottledError,
)
from realname.otp import OtpThrottledError
from realname.service import parse_identity_input
from realname.totp import new_secret, provisioning_uri, qr_svg

from ..accounts import check_username, normalize_phone
from ..assurance import LEVELS, rank
from ..errors import (
    CurrentFactorRequiredError,
    DuplicateAccountError,
    InvalidCredentialsError,
    SecondFactorLockedError,
)
from ..i18n import error_text, translate
from ..login import LoginRequest
from ..models import Account
from ..passwords import WeakPasswordError, validate_password
from ..pending_steps import REGISTRATION, SECOND_FACTOR
from . import bp
from ._web import (
    allow_form_target,
    check_csrf,
    client_ip,
    complete_login,
    deliver_logouts,
    drop_step,
    load_interaction,
    load_step,
    locale,
    provider,
    render,
    save_step,
    services,
    set_sso_cookie,
    sso_cookie,
    update_step,
)
from .oauth import pending_request

MFA_MAX_FAILURES = 5


def _see_other(location: str) -> Any:
    return redirect(location, code=303)


def _err(exc: DomainError) -> str:
    return error_text(exc.code, exc.public_message, locale())


def _msg(code: str) -> str:
    return error_text(code, code, locale())


def _masked_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def _next_after(iid: str | None) -> str:
    return url_for("idp.authorize_resume", interaction=iid) if iid else url_for("idp.account")


def _send_sms(purpose: str, target: str, phone: str) -> str | None:
    """Issue and send a code; returns an error code for the form, or None. Issue 17:
    every send is throttled per destination phone and per client IP as well as per target."""
    try:
        code = services().otp.issue(purpose, target, phone=phone, client_ip=client_ip())
    except OtpThrottledError:
        return "otp_throttled"
    text = f"【一网】验证码 {code}，5 分钟内有效。请勿告诉他人。"
    return None if provider().sms.send(phone, text) else "sms_failed"


def _current() -> tuple[Any, Account] | None:
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    if sso is None:
        return None
    account = svc.session.get(Account, sso.account_id)
    if account is None or account.status != "active":
        return None
    return sso, account


def _login_first() -> Any:
    return _see_other(url_for("idp.login", next=request.path))


# -- registration ---------------------------------------------------------------------


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
        return again(exc.status_code, _err(exc))
    if not check_csrf():
        return again(400, _msg("csrf.expired"))
    today = svc.p.clock.now().date()
    try:
        name, rid = parse_identity_input(form["name"], form["id_number"], today=today)
    except RealnameInputError as exc:
        return again(400, errors={exc.field: exc.public_message})
    phone = normalize_phone(form["phone"])
    if phone is None:
        return again(400, errors={"phone": _msg("bad_phone")})
    password = request.form.get("password", "")
    username = form["username"].strip() or None
    if username and not check_username(username):
        return again(400, errors={"username": _msg("bad_username")})
    try:
        validate_password(password, context=tuple(x for x in (username, phone, rid.number) if x))
    except WeakPasswordError as exc:
        return again(400, errors={"password": exc.public_message})
    try:
        svc.realname.check_registry(
            name, rid, account_key="register:" + svc.realname.id_index(rid.number), client_ip=client_ip(),
            client_id=_client_of(iid),
        )
    except RegistryUnavailableError as exc:
        # Issue 3: registry down → a clear page, nothing written but the audit event, the
        # form kept for a retry.
        db.session.commit()
        return again(503, _err(exc))
    except (VerificationFailedError, VerificationThrottledError) as exc:
        db.session.commit()  # the audit event only
        return again(exc.status_code if isinstance(exc, VerificationThrottledError) else 400, _err(exc))
    pid = save_step(REGISTRATION, {
        "name": name, "id_number": rid.number, "phone": phone, "username": username,
        "password_hash": svc.p.passwords.hash(password), "interaction": iid,
    })
    failure = _send_sms("register", pid, phone)
    if failure:
        drop_step(REGISTRATION, pid)
        db.session.commit()  # the registry check's audit event
        return again(429 if failure == "otp_throttled" else 503, _msg(failure))
    db.session.commit()  # the throttling counters only; no account yet
    return _see_other(url_for("idp.register_confirm", pending=pid))


@bp.get("/register/confirm")
def register_confirm() -> Any:
    pid = request.args.get("pending", "")
    data = load_step(REGISTRATION, pid)
    if data is None:
        return render("idp/error.html", 400, error="registration_expired")
    return render("idp/register_confirm.html", pending=pid, masked_phone=_masked_phone(data["phone"]), error=None)


@bp.post("/register/confirm")
def register_confirm_submit() -> Any:
    pid = request.form.get("pending", "")
    data = load_step(REGISTRATION, pid)
    if data is None:
        return render("idp/error.html", 400, error="registration_expired")
    page: dict[str, Any] = {"pending": pid, "masked_phone": _masked_phone(data["phone"])}
    if not check_csrf():
        return render("idp/register_confirm.html", 400, error=_msg("csrf.expired"), **page)
    svc = services()
    if not svc.otp.verify("register", pid, request.form.get("code", "")[:12]):
        return render("idp/register_confirm.html", 400, error=_msg("bad_code"), **page)
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
        cookie=sso_cookie(), ip=client_ip()), _next_after(data.get("interaction") or None))


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
    return render("idp/register.html", 409, form=form, errors={}, error=_msg("duplicate_registration"),
                  interaction=data.get("interaction", ""), duplicate=True)


# -- second factor ---------------------------------------------------------------------


def start_second_factor(account_id: int, iid: str | None, *, stepup: bool) -> Any:
    """Send the browser to the second-factor page for this account."""
    pid = save_step(SECOND_FACTOR, {"account_id": account_id, "interaction": iid or "", "stepup": stepup, "failures": 0})
    return _see_other(url_for("idp.mfa", pending=pid))


def _second_factor(svc: Any, account: Account, form: Any) -> str | None:
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
        return _mfa_page(pid, data, 400, _msg("csrf.expired"))
    svc = services()
    account = svc.session.get(Account, data["account_id"])
    if account is None or account.status != "active":
        drop_step(SECOND_FACTOR, pid)
        return render("idp/error.html", 400, error="login_expired")
    if request.form.get("action") == "send_sms":
        phone = svc.accounts.phone_of(account)
        if not (phone and svc.sms_second_factor_allowed(account)):
            return _mfa_page(pid, data, 400, _msg("bad_phone"))
        failure = _send_sms("login", f"acct:{account.id}", phone)
        if failure:
            return _mfa_page(pid, data, 429, _msg(failure))
        return _mfa_page(pid, data, notice=_msg("mfa.sms_sent"))
    try:
        # Issue 17: one per-account count of wrong codes, whatever the pending login.
        svc.accounts.check_second_factor_allowed(account.id)
    except SecondFactorLockedError:
        drop_step(SECOND_FACTOR, pid)
        svc.audit.record("mfa.failure", actor=f"account:{account.id}", outcome="denied", reason="locked",
                         ip=client_ip())
        db.session.commit()
        return render("idp/error.html", 429, error="too_many_attempts")
    used = _second_factor(svc, account, request.form)
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
        return _mfa_page(pid, data, 401, _msg("bad_code"))
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
            return _see_other(url_for("idp.login", interaction=iid) if iid else url_for("idp.account"))
        if current is None or current.account_id != account.id:
            db.session.commit()
            return _see_other(_next_after(iid))
        methods = (used,)
    return complete_login(LoginRequest(
        account_id=account.id, subject_seed=account.subject_seed, methods=methods,
        path="step_up" if data.get("stepup") else "second_factor", cookie=sso_cookie(), ip=client_ip()),
        _next_after(iid))


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
    current = _current()
    if current is None:
        return _see_other(url_for("idp.authorize_resume", interaction=iid))
    sso, account = current
    svc = services()
    wanted = [v for v in req.acr_values if v in LEVELS]
    target = min(wanted, key=rank) if wanted else "cn-l0"
    if rank(svc.session_acr(account.id, sso.amr)) >= rank(target):
        return _see_other(url_for("idp.authorize_resume", interaction=iid))
    identity = svc.realname.identity_of(account.id)
    if identity is None:
        allow_form_target(req.redirect_uri)
        return render("idp/verify.html", form={}, errors={}, error=None, interaction=iid)
    sms_bound = bool(identity.phone_bound_at) and svc.sms_second_factor_allowed(account)
    if svc.realname.has_totp(account.id):
        if "otp" in sso.enrolled and not sms_bound:
            # Issue 17: the authenticator was enrolled in this very session, which cannot
            # vouch for it: a new login with the password and the authenticator can.
            return _see_other(url_for("idp.login", interaction=iid))
        return start_second_factor(account.id, iid, stepup=True)
    if sms_bound:
        return start_second_factor(account.id, iid, stepup=True)
    # No bound factor yet: enrol an authenticator, then log in with it.
    return _see_other(url_for("idp.totp", interaction=iid))


# -- identity verification ---------------------------------------------------------------


def _client_of(iid: str) -> str | None:
    """The portal whose authorization request led here, for the audit trail (issue 6:
    registry verification volume per client)."""
    record = load_interaction(iid) if iid else None
    client_id = record["params"].get("client_id") if record else None
    return str(client_id) if client_id else None


@bp.get("/account/verify")
def verify() -> Any:
    if _current() is None:
        return _login_first()
    return render("idp/verify.html", form={}, errors={}, error=None, interaction="")


@bp.post("/account/verify")
def verify_submit() -> Any:
    current = _current()
    if current is None:
        return _login_first()
    _, account = current
    iid = request.form.get("interaction", "")
    form = {k: request.form.get(k, "")[:64] for k in ("name", "id_number")}

    def again(status: int, error: str | None = None, errors: dict[str, str] | None = None) -> Any:
        return render("idp/verify.html", status, form=form, errors=errors or {}, error=error, interaction=iid)

    if not check_csrf():
        return again(400, _msg("csrf.expired"))
    svc = services()
    existing = svc.realname.identity_of(account.id)
    if existing is not None:
        # Re-run verification with the stored identity (account page).
        try:
            svc.realname.recheck(existing, client_ip=client_ip())
        except (RegistryUnavailableError, VerificationFailedError, VerificationThrottledError) as exc:
            db.session.commit()
            return _see_other(url_for("idp.account", problem=exc.code))
        db.session.commit()
        return _see_other(url_for("idp.account", saved=1))
    try:
        name, rid = parse_identity_input(form["name"], form["id_number"], today=svc.p.clock.now().date())
        svc.realname.check_registry(name, rid, account_key=f"acct:{account.id}", client_ip=client_ip(),
                                    client_id=_client_of(iid))
        svc.realname.bind_identity(account.id, name, rid)
        svc.accounts.set_verified_name(account, name)
    except RealnameInputError as exc:
        return again(400, errors={exc.field: exc.public_message})
    except RegistryUnavailableError as exc:
        db.session.commit()  # nothing was written but the audit event
        return again(503, _err(exc))
    except (VerificationFailedError, VerificationThrottledError, DuplicateIdentityError) as exc:
        db.session.commit()  # keep the rate-limit counters' effect; nothing else was written
        return again(exc.status_code, _err(exc))
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
        return _see_other(url_for("idp.stepup", interaction=iid))
    return _see_other(url_for("idp.account", saved=1))


# -- account page ------------------------------------------------------------------------


# The problem codes our own redirects put on /account (the re-check in verify_submit).
# Policy: any other value is ignored, so a crafted link cannot show its own text (a fake
# support number, "your account is locked") as an alert on the genuine page.
ACCOUNT_PROBLEMS = frozenset(
    {RegistryUnavailableError.code, VerificationFailedError.code, VerificationThrottledError.code}
)


@bp.get("/account")
def account() -> Any:
    current = _current()
    if current is None:
        return _login_first()
    _, acct = current
    if acct.kind == "organization":
        return _see_other(url_for("idp.company"))
    svc = services()
    identity = svc.realname.identity_of(acct.id)
    phone = svc.accounts.phone_of(acct)
    return render(
        "idp/account.html",
        level=svc.realname.level_of(acct.id),
        identity=svc.realname.view(identity) if identity else None,
        phone=_masked_phone(phone) if phone else None,
        phone_verified=acct.phone_verified_at is not None,
        has_totp=svc.realname.has_totp(acct.id),
        consents=_consent_rows(acct.id),
        notice=_msg("saved") if request.args.get("saved") else None,
        problem=_msg(request.args["problem"]) if request.args.get("problem") in ACCOUNT_PROBLEMS else None,
    )


@bp.get("/account/totp")
def totp() -> Any:
    current = _current()
    if current is None:
        return _login_first()
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
    current = _current()
    if current is None:
        return _login_first()
    _, acct = current
    iid = request.form.get("interaction", "")
    svc = services()
    if not check_csrf():
        return render("idp/error.html", 400, error="csrf")
    secret = svc.realname.pending_totp_secret(acct.id)
    if secret is None:
        return _see_other(url_for("idp.totp", interaction=iid))
    replacing = svc.realname.has_totp(acct.id)
    if replacing:
        # Issue 17: replacing an authenticator needs the current one (a code or a recovery
        # code), counted like every second-factor attempt; otherwise an administrator's
        # audited reset (admin.accounts.reset_mfa).
        try:
            svc.accounts.check_second_factor_allowed(acct.id)
        except SecondFactorLockedError as exc:
            return _totp_page(acct, secret, iid, 429, _err(exc))
        if _second_factor(svc, acct, {"totp": request.form.get("current", ""),
                                      "recovery": request.form.get("current", "")}) is None:
            svc.accounts.count_second_factor_failure(acct.id)
            svc.audit.record("mfa.failure", actor=f"account:{acct.id}", outcome="denied",
                             reason="current_factor_required", ip=client_ip(), details={"purpose": "replace"})
            db.session.commit()
            return _totp_page(acct, secret, iid, 400, _err(CurrentFactorRequiredError()))
    codes = svc.realname.confirm_totp(acct.id, request.form.get("code", "")[:12])
    if codes is None:
        return _totp_page(acct, secret, iid, 400, _msg("bad_code"))
    # Issue 17: the new authenticator does not raise this session's amr/acr (the session
    # is as strong as the login that made it); it counts from the next login.
    sso = svc.sessions.mark_enrolled(sso_cookie(), "otp")
    svc.audit.record("mfa.enroll", actor=f"account:{acct.id}", target=f"account:{acct.id}", ip=client_ip(),
                     details={"factor": "totp", "replaced": replacing})
    deliveries = svc.credentials_changed(acct, keep_sid=sso.sid if sso else None, change="totp",
                                         client_ip=client_ip())
    db.session.commit()
    deliver_logouts(deliveries)
    body, status = render("idp/recovery_codes.html", codes=codes, next_url=_next_after(iid or None))
    return make_response(body, status)


@bp.get("/account/phone")
def phone() -> Any:
    current = _current()
    if current is None:
        return _login_first()
    number = services().accounts.phone_of(current[1])
    return render("idp/phone.html", masked_phone=_masked_phone(number) if number else "—", error=None, notice=None)


@bp.post("/account/phone")
def phone_submit() -> Any:
    current = _current()
    if current is None:
        return _login_first()
    _, acct = current
    svc = services()
    number = svc.accounts.phone_of(acct)
    page: dict[str, Any] = {"masked_phone": _masked_phone(number) if number else "—"}
    if not check_csrf():
        return render("idp/phone.html", 400, error=_msg("csrf.expired"), notice=None, **page)
    if not number:
        return render("idp/phone.html", 400, error=_msg("bad_phone"), notice=None, **page)
    if request.form.get("action") == "send":
        failure = _send_sms("phone-verify", f"acct:{acct.id}", number)
        if failure:
            return render("idp/phone.html", 429, error=_msg(failure), notice=None, **page)
        return render("idp/phone.html", error=None, notice=_msg("mfa.sms_sent"), **page)
    if not svc.otp.verify("phone-verify", f"acct:{acct.id}", request.form.get("code", "")[:12]):
        return render("idp/phone.html", 400, error=_msg("bad_code"), notice=None, **page)
    svc.accounts.mark_phone_verified(acct)
    identity = svc.realname.identity_of(acct.id)
    if identity is not None and identity.phone_bound_at is None:
        try:
            svc.realname.bind_phone(identity, number, client_ip=client_ip())
        except (RegistryUnavailableError, VerificationThrottledError):
            pass
    db.session.commit()
    return _see_other(url_for("idp.account", saved=1))


@bp.get("/account/password")
def password() -> Any:
    if _current() is None:
        return _login_first()
    return render("idp/password.html", error=None)


@bp.post("/account/password")
def password_submit() -> Any:
    current = _current()
    if current is None:
        return _login_first()
    _, acct = current
    if not check_csrf():
        return render("idp/password.html", 400, error=_msg("csrf.expired"))
    svc = services()
    try:
        svc.accounts.change_password(acct, request.form.get("current", ""), request.form.get("new", ""))
    except InvalidCredentialsError as exc:
        return render("idp/password.html", 400, error=_err(exc))
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
    response = _see_other(url_for("idp.account", saved=1))
    if result is not None:
        set_sso_cookie(response, result[0])
    return response


@bp.post("/account/consents/<client_id>/withdraw")
def consent_withdraw(client_id: str) -> Any:
    """Issue 5 / PIPL Art. 15: withdrawing consent stops the portal's future access —
    its refresh tokens and the access tokens of those grants stop working now, and the
    next authorization asks again."""
    current = _current()
    if current is None:
        return _login_first()
    _, acct = current
    if not check_csrf():
        return render("idp/error.html", 400, error="csrf")
    svc = services()
    if svc.consents.withdraw(acct.id, client_id[:64]):
        grants = svc.tokens.revoke_grants_of(acct.id, client_id[:64])
        svc.audit.record("consent.withdraw", actor=f"account:{acct.id}", target=f"account:{acct.id}",
                         client_id=client_id[:64], details={"grants_revoked": grants})
        db.session.commit()
    return _see_other(url_for("idp.account", saved=1))


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
    current = _current()
    if current is None:
        return _login_first()
    _, acct = current
    client_id = request.args.get("client") or None
    rows = _history_rows(acct.id, client_id[:64] if client_id else None)
    portals = sorted({(r["client_id"], r["portal"]) for r in _history_rows(acct.id, None)}, key=lambda p: p[1])
    return render("idp/history.html", rows=rows, portals=portals, selected=client_id or "",
                  consents=_consent_rows(acct.id))


@bp.get("/account/history.json")
def history_export() -> Any:
    current = _current()
    if current is None:
        return _login_first()
    _, acct = current
    client_id = request.args.get("client") or None
    body = json.dumps({"disclosures": _history_rows(acct.id, client_id[:64] if client_id else None)},
                      ensure_ascii=False, indent=2)
    response = make_response(body, 200)
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="yiwang-data-sharing-history.json"'
    response.headers["Cache-Control"] = "no-store"
    return response
