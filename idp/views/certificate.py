"""Certificate login for legal persons (issue 4): challenge-response with the holder's
UKey (or scripts/sign_challenge.py), and mTLS mode behind a trusted TLS-terminating
proxy. A valid certificate logs the legal person in with acr cn-l4, amr hwk (RFC 8176)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from flask import redirect, request, session, url_for

from certificates.proof import ProofFailure
from certificates.trust import CertificateRejectedError, ValidatedCertificate
from common.db import db

from ..i18n import error_text, reason_text, translate
from ..login import LoginRequest
from . import bp
from ._web import (
    allow_form_target,
    browser_id,
    check_csrf,
    client_ip,
    complete_login,
    load_interaction,
    locale,
    render,
    services,
    sso_cookie,
    update_interaction,
)
from .oauth import pending_request

log = logging.getLogger("yiwang.certificates")

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
MAX_PEM = 64 * 1024


def _page(iid: str, status: int = 200, error: str | None = None) -> Any:
    record = load_interaction(iid) if iid else None
    req = pending_request(record) if record else None
    if req is not None:
        allow_form_target(req.redirect_uri)
    return render("idp/login_certificate.html", status, challenge=services().certificate_login.new_challenge(browser_id()), interaction=iid,
                  client_name=req.client.name if req else None, error=error,
                  mtls=services().certificate_login.settings.mtls_enabled)


def _rejected(exc: CertificateRejectedError) -> str:
    # The specific reason is shown (issue 4: every rejection has a reason for the user).
    loc = locale()
    return f"{error_text('certificate_rejected', exc.public_message, loc)} {reason_text(exc.reason.value, exc.public_message, loc)}"


def _refuse(iid: str, reason: str, message: str, ca_id: int | None = None) -> Any:
    """The rejection page; the rejection is audited and committed first (issue 4: every
    rejection has a reason, for the user and for the trail)."""
    services().audit.record("certificate.rejected", actor="anonymous", outcome="denied", reason=reason,
                            ip=client_ip(), details={"ca_id": ca_id} if ca_id is not None else None)
    db.session.commit()
    return _page(iid, 403, message)


def _log_in(validated: ValidatedCertificate, iid: str) -> Any:
    svc = services()
    try:
        identity = svc.certificate_login.resolve(validated)
    except CertificateRejectedError as exc:
        # A conflict flags the credentials involved: keep that, then refuse.
        svc.audit.record("certificate.rejected", actor="anonymous", outcome="denied", reason=exc.reason.value,
                         ip=client_ip(), details={"ca_id": validated.ca.ca_id})
        db.session.commit()
        log.warning("certificate login refused", extra={"result": exc.reason.value, "adapter": validated.ca.name})
        return _page(iid, 403, _rejected(exc))
    ca = validated.ca
    # credential_id stays inside the session (the company page grants mandates on its
    # authority); only cert_issuer reaches tokens.
    context = {"cert_issuer": {"name": ca.name, "province": ca.province}, "credential_id": identity.credential_id}
    account = svc.accounts.get(identity.account_id)
    log.info("certificate login", extra={"result": "ok", "adapter": ca.name})
    target = url_for("idp.authorize_resume", interaction=iid) if iid else url_for("idp.company")
    return complete_login(LoginRequest(
        account_id=account.id, subject_seed=account.subject_seed, methods=("hwk",), path="certificate",
        cookie=sso_cookie(), ip=client_ip(), context=context,
        details={"ca_id": ca.ca_id, "credential_id": identity.credential_id,
                 "legal_person_created": identity.created}), target)


@bp.get("/login/certificate")
def certificate_login() -> Any:
    return _page(request.args.get("interaction", ""))


@bp.post("/login/certificate")
def certificate_login_submit() -> Any:
    iid = request.form.get("interaction", "")
    if iid and load_interaction(iid) is None:
        return render("idp/error.html", 400, error="interaction_expired")
    if not check_csrf():
        return _page(iid, 400, translate("csrf.expired", locale()))
    challenge = request.form.get("challenge", "")
    if not services().certificate_login.consume_challenge(challenge, str(session.get("bid", ""))):
        return _page(iid, 400, error_text("challenge_expired", "The challenge has expired.", locale()))
    pem = request.form.get("certificate", "").encode()[:MAX_PEM]
    chain = _PEM_BLOCK.findall(request.form.get("chain", "").encode()[:MAX_PEM])
    try:
        validated = services().certificate_login.validate(pem, chain)
    except CertificateRejectedError as exc:
        log.warning("certificate login refused", extra={"result": exc.reason.value})
        return _refuse(iid, exc.reason.value, _rejected(exc))
    failure = services().certificate_login.check_proof(validated, challenge, request.form.get("signature", ""))
    if failure is not None:
        log.warning("certificate login refused", extra={"result": failure.value, "adapter": validated.ca.name})
        return _refuse(iid, failure.value, _proof_message(failure), validated.ca.ca_id)
    return _log_in(validated, iid)


def _proof_message(failure: ProofFailure) -> str:
    loc = locale()
    generic = error_text("bad_signature_proof", "The signature does not match.", loc)
    if failure is ProofFailure.BAD_SIGNATURE:
        return generic
    return f"{generic} {translate(f'cert.proof.{failure.value}', loc)}"


def _peer_address() -> str:
    # The address that connected to us, before ProxyFix rewrote remote_addr.
    orig = request.environ.get("werkzeug.proxy_fix.orig", {})
    return str(orig.get("REMOTE_ADDR") or request.environ.get("REMOTE_ADDR") or "")


@bp.get("/login/certificate/mtls")
def certificate_login_mtls() -> Any:
    """mTLS mode: the TLS-terminating proxy verified possession of the key during the
    handshake and passes the certificate in a header; only configured proxies may."""
    settings = services().certificate_login.settings
    iid = request.args.get("interaction", "")
    header = settings.client_cert_header
    if not header or not settings.trusts_header_from(_peer_address()):
        log.warning("client certificate header ignored", extra={"result": "untrusted_peer"})
        return _refuse(iid, "untrusted_peer", translate("cert.no_client_certificate", locale()))
    raw = request.headers.get(header, "")
    if not raw or len(raw) > MAX_PEM * 3:
        return _refuse(iid, "no_client_certificate", translate("cert.no_client_certificate", locale()))
    blocks = _PEM_BLOCK.findall(unquote(raw).encode())
    if not blocks:
        return _refuse(iid, "no_client_certificate", translate("cert.no_client_certificate", locale()))
    try:
        validated = services().certificate_login.validate(blocks[0], blocks[1:])
    except CertificateRejectedError as exc:
        log.warning("certificate login refused", extra={"result": exc.reason.value})
        return _refuse(iid, exc.reason.value, _rejected(exc))
    return _log_in(validated, iid)



# -- agents: acting for a legal person -------------------------------------------------


@bp.get("/login/act-as")
def act_as() -> Any:
    iid = request.args.get("interaction", "")
    record = load_interaction(iid)
    req = pending_request(record) if record else None
    if req is None:
        return render("idp/error.html", 400, error="interaction_expired")
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    if sso is None:
        return redirect(url_for("idp.authorize_resume", interaction=iid), code=303)
    allow_form_target(req.redirect_uri)
    return render("idp/act_as.html", interaction=iid, client_name=req.client.name,
                  choices=svc.legal.active_for(sso.account_id))


@bp.post("/login/act-as")
def act_as_submit() -> Any:
    iid = request.form.get("interaction", "")
    record = load_interaction(iid)
    if record is None or pending_request(record) is None:
        return render("idp/error.html", 400, error="interaction_expired")
    if not check_csrf():
        return render("idp/error.html", 400, error="csrf")
    svc = services()
    sso = svc.sessions.get(sso_cookie())
    if sso is None:
        return redirect(url_for("idp.authorize_resume", interaction=iid), code=303)
    choice = request.form.get("acting_for", "self")
    if choice == "self":
        record["acting_for"] = "self"
    else:
        allowed = {a.legal_person_id for a in svc.legal.active_for(sso.account_id)}
        if not choice.isdigit() or int(choice) not in allowed:
            return render("idp/error.html", 403, error="no_mandate")
        record["acting_for"] = int(choice)
    update_interaction(iid, record)
    return redirect(url_for("idp.authorize_resume", interaction=iid), code=303)
