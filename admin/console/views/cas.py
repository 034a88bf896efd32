"""Certificate authorities: list, detail (certificates, revocation state, mapping
profile), register from a PEM bundle, rename and change the profile (with a preview on
a sample certificate before saving), disable/enable, CRL upload, and a standalone
"test a profile on this certificate" page. Every operation is a call to
``admin.cas.CaAdminService``; the rules are ``certificates.registry``'s."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from admin.cas import MappingPreview
from admin.roles import Permission
from certificates.errors import CaNotFoundError, DuplicateCaError
from certificates.trust import CertificateRejectedError
from common.db import db
from common.errors import ValidationError

from .. import bp
from ..web import admin_services, current_admin, render, requires, see_other

# The form errors an operator can fix: a bad bundle, profile, CRL or certificate, a
# taken name. (Not DomainError as a whole: a refused permission must stay a 403.)
_INPUT_ERRORS = (ValidationError, DuplicateCaError, CertificateRejectedError)
_MAX_TEXT = 1024 * 1024


def _ca_id(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise CaNotFoundError(f"CA {value[:40]!r}")
    return int(value)


def _text(name: str, limit: int = 200) -> str:
    return (request.form.get(name) or "")[:limit]


def _lines(name: str) -> list[str]:
    return [line.strip() for line in _text(name, 20000).replace("\r", "").split("\n") if line.strip()]


def _sample() -> bytes | None:
    text = _text("sample", 65536).strip()
    return text.encode("utf-8") if text else None


@bp.get("/cas")
@requires(Permission.CAS_READ)
def cas() -> Any:
    rows = admin_services().cas.all(current_admin().actor)
    return render("admin/cas.html", cas=rows, done=request.args.get("done"))


@bp.get("/cas/new")
@requires(Permission.CAS_WRITE)
def ca_new() -> Any:
    return render("admin/ca_form.html", ca=None, values={}, error=None)


@bp.post("/cas/new")
@requires(Permission.CAS_WRITE)
def ca_create() -> Any:
    name, province, ocsp_url = _text("name").strip(), _text("province", 64).strip(), _text("ocsp_url", 2000).strip()
    pem_bundle, profile, crl_urls = _text("pem_bundle", _MAX_TEXT), _text("profile", 65536), _lines("crl_urls")
    values = {"name": name, "province": province, "pem_bundle": pem_bundle, "profile": profile,
              "crl_urls": crl_urls, "ocsp_url": ocsp_url}
    try:
        view = admin_services().cas.add(current_admin().actor, name=name, province=province, pem_bundle=pem_bundle,
                                        profile=profile, crl_urls=crl_urls, ocsp_url=ocsp_url or None)
    except _INPUT_ERRORS as exc:
        db.session.rollback()
        return render("admin/ca_form.html", 400, ca=None, values=values, error=exc.public_message, code=exc.code)
    db.session.commit()
    return see_other(url_for("console.ca", ca_id=view.row.id, done="created"))


@bp.get("/cas/<ca_id>")
@requires(Permission.CAS_READ)
def ca(ca_id: str) -> Any:
    view = admin_services().cas.get(current_admin().actor, _ca_id(ca_id))
    return render("admin/ca.html", ca=view, done=request.args.get("done"), crl_error=None)


@bp.get("/cas/<ca_id>/edit")
@requires(Permission.CAS_WRITE)
def ca_edit(ca_id: str) -> Any:
    view = admin_services().cas.get(current_admin().actor, _ca_id(ca_id))
    values = {"name": view.row.name, "province": view.row.province, "profile": view.profile_json, "sample": ""}
    return render("admin/ca_form.html", ca=view, values=values, error=None, preview=None)


@bp.post("/cas/<ca_id>/edit")
@requires(Permission.CAS_WRITE)
def ca_update(ca_id: str) -> Any:
    """"preview" maps the sample with the profile as typed and shows the trail, saving
    nothing; "save" stores the changes (and, with a sample, only if the profile finds an
    identifier in it)."""
    ops, actor, number = admin_services().cas, current_admin().actor, _ca_id(ca_id)
    view = ops.get(actor, number)
    values = {"name": _text("name").strip(), "province": _text("province", 64).strip(),
              "profile": _text("profile", 65536), "sample": _text("sample", 65536)}
    sample = _sample()
    try:
        if request.form.get("action") == "preview":
            if sample is None:
                return render("admin/ca_form.html", 400, ca=view, values=values, error=None, preview=None,
                              sample_error=True)
            preview = ops.preview(actor, sample, profile=values["profile"] or None, ca_id=number)
            return render("admin/ca_form.html", ca=view, values=values, error=None, preview=preview)
        ops.update(actor, number, name=values["name"], province=values["province"],
                   profile=values["profile"] or None, sample=sample)
    except _INPUT_ERRORS as exc:
        db.session.rollback()
        view = ops.get(actor, number)
        return render("admin/ca_form.html", 400, ca=view, values=values, error=exc.public_message, code=exc.code,
                      preview=None)
    db.session.commit()
    return see_other(url_for("console.ca", ca_id=number, done="saved"))


@bp.post("/cas/<ca_id>/enabled")
@requires(Permission.CAS_WRITE)
def ca_enabled(ca_id: str) -> Any:
    number, enabled = _ca_id(ca_id), request.form.get("enabled") == "yes"
    admin_services().cas.set_enabled(current_admin().actor, number, enabled)
    db.session.commit()
    return see_other(url_for("console.ca", ca_id=number, done="enabled" if enabled else "disabled"))


@bp.post("/cas/<ca_id>/crl")
@requires(Permission.CAS_WRITE)
def ca_crl(ca_id: str) -> Any:
    """A CRL file (DER or PEM) or pasted PEM text, within the request size limit (1 MiB);
    larger CRLs: ``flask certificates crl load`` or CRL URLs with ``crl refresh``."""
    ops, actor, number = admin_services().cas, current_admin().actor, _ca_id(ca_id)
    upload = request.files.get("crl_file")
    data = upload.read() if upload is not None and upload.filename else _text("crl_pem", _MAX_TEXT).encode("utf-8")
    if not data.strip():
        return render("admin/ca.html", 400, ca=ops.get(actor, number), done=None, crl_error=None, crl_missing=True)
    try:
        ops.load_crl(actor, number, data)
    except _INPUT_ERRORS as exc:
        db.session.rollback()
        return render("admin/ca.html", 400, ca=ops.get(actor, number), done=None, crl_error=exc.public_message)
    db.session.commit()
    return see_other(url_for("console.ca", ca_id=number, done="crl_loaded"))


def _preview_page(status: int, values: dict[str, str], preview: MappingPreview | None, error: str | None,
                  sample_error: bool = False) -> Any:
    rows = admin_services().cas.all(current_admin().actor)
    return render("admin/ca_preview.html", status, cas=rows, values=values, preview=preview, error=error,
                  sample_error=sample_error)


@bp.get("/cas/preview")
@requires(Permission.CAS_READ)
def ca_preview() -> Any:
    return _preview_page(200, {"sample": "", "profile": "", "ca_id": request.args.get("ca_id", "")[:18]}, None, None)


@bp.post("/cas/preview")
@requires(Permission.CAS_READ)
def ca_preview_run() -> Any:
    """Nothing changes, so the result is rendered in place (no 303: the sample would
    have to travel in a URL)."""
    values = {"sample": _text("sample", 65536), "profile": _text("profile", 65536), "ca_id": _text("ca_id", 18)}
    sample = _sample()
    if sample is None:
        return _preview_page(400, values, None, None, sample_error=True)
    ca_id = int(values["ca_id"]) if values["ca_id"].isdigit() else None
    try:
        preview = admin_services().cas.preview(current_admin().actor, sample, profile=values["profile"] or None,
                                               ca_id=ca_id)
    except _INPUT_ERRORS as exc:
        db.session.rollback()
        return _preview_page(400, values, None, exc.public_message)
    return _preview_page(200, values, preview, None)
