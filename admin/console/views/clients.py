"""Clients (portals): list and search, register, edit, rotate the secret (shown once),
disable/enable, delete, consent and disclosure counts. Every operation is a call to
``admin.clients.ClientAdminService`` (permission check and audit event there too)."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from admin.roles import Permission
from common.db import db
from idp.catalogue import CATALOGUE
from idp.clients import AUTH_METHODS, GRANT_TYPES, SUPPORTED_SCOPES
from idp.errors import InvalidClientMetadataError

from .. import bp
from ..forms import NEW_CLIENT_DEFAULTS, client_values, parse_client_form
from ..login import CONSOLE_CLIENT_ID
from ..web import admin_services, current_admin, locale, render, requires, see_other, show_once, shown_once

_CHOICES = {"grant_types": GRANT_TYPES, "scopes": SUPPORTED_SCOPES, "auth_methods": AUTH_METHODS}


def _catalogue() -> list[dict[str, str]]:
    en = locale() == "en"
    return [{"name": c.name, "text": c.en if en else c.zh, "sensitivity": c.sensitivity.value,
             "scopes": ", ".join(c.scopes)} for c in CATALOGUE.values()]


def _form_page(template: str, status: int, values: dict[str, Any], errors: dict[str, str], **ctx: Any) -> Any:
    return render(template, status, values=values, errors=errors, catalogue=_catalogue(), **_CHOICES, **ctx)


@bp.get("/clients")
@requires(Permission.CLIENTS_READ)
def clients() -> Any:
    query = request.args.get("q", "")[:200]
    page = admin_services().clients.search(current_admin().actor, query=query or None,
                                           cursor=request.args.get("cursor") or None)
    return render("admin/clients.html", page=page, q=query, done=request.args.get("done"),
                  console_client_id=CONSOLE_CLIENT_ID)


@bp.get("/clients/new")
@requires(Permission.CLIENTS_WRITE)
def client_new() -> Any:
    return _form_page("admin/client_form.html", 200, dict(NEW_CLIENT_DEFAULTS), {}, client=None)


@bp.post("/clients/new")
@requires(Permission.CLIENTS_WRITE)
def client_create() -> Any:
    form = parse_client_form(request.form)
    if form.errors:
        return _form_page("admin/client_form.html", 400, form.values, form.errors, client=None)
    try:
        row, secret = admin_services().clients.create(current_admin().actor, **form.fields)
    except InvalidClientMetadataError as exc:
        db.session.rollback()
        return _form_page("admin/client_form.html", 400, form.values, {"form": exc.public_message}, client=None)
    db.session.commit()
    return see_other(url_for("console.client", client_id=row.client_id, shown=show_once(secret), done="created"))


@bp.get("/clients/<client_id>")
@requires(Permission.CLIENTS_READ)
def client(client_id: str) -> Any:
    ops, actor = admin_services().clients, current_admin().actor
    row = ops.get(actor, client_id)
    usage = ops.usage(actor, client_id)
    return render("admin/client.html", client=row, usage=usage, secret=shown_once(request.args.get("shown")),
                  done=request.args.get("done"), system=row.client_id == CONSOLE_CLIENT_ID,
                  catalogue={c["name"]: c for c in _catalogue()})


@bp.get("/clients/<client_id>/edit")
@requires(Permission.CLIENTS_WRITE)
def client_edit(client_id: str) -> Any:
    row = admin_services().clients.get(current_admin().actor, client_id)
    if row.client_id == CONSOLE_CLIENT_ID:
        return _system_client()
    return _form_page("admin/client_form.html", 200, client_values(row), {}, client=row)


@bp.post("/clients/<client_id>/edit")
@requires(Permission.CLIENTS_WRITE)
def client_update(client_id: str) -> Any:
    ops, actor = admin_services().clients, current_admin().actor
    row = ops.get(actor, client_id)
    if row.client_id == CONSOLE_CLIENT_ID:
        return _system_client()
    form = parse_client_form(request.form)
    if form.errors:
        return _form_page("admin/client_form.html", 400, form.values, form.errors, client=row)
    try:
        _, secret = ops.update(actor, client_id, **form.fields)
    except InvalidClientMetadataError as exc:
        db.session.rollback()
        row = ops.get(actor, client_id)
        return _form_page("admin/client_form.html", 400, form.values, {"form": exc.public_message}, client=row)
    db.session.commit()
    return see_other(url_for("console.client", client_id=client_id, shown=show_once(secret), done="saved"))


@bp.post("/clients/<client_id>/rotate")
@requires(Permission.CLIENTS_WRITE)
def client_rotate(client_id: str) -> Any:
    if client_id == CONSOLE_CLIENT_ID:
        return _system_client()
    secret = admin_services().clients.rotate_secret(current_admin().actor, client_id)
    db.session.commit()
    return see_other(url_for("console.client", client_id=client_id, shown=show_once(secret)))


@bp.post("/clients/<client_id>/enabled")
@requires(Permission.CLIENTS_WRITE)
def client_enabled(client_id: str) -> Any:
    if client_id == CONSOLE_CLIENT_ID:
        return _system_client()
    enabled = request.form.get("enabled") == "yes"
    admin_services().clients.set_enabled(current_admin().actor, client_id, enabled)
    db.session.commit()
    return see_other(url_for("console.client", client_id=client_id, done="enabled" if enabled else "disabled"))


@bp.post("/clients/<client_id>/delete")
@requires(Permission.CLIENTS_WRITE)
def client_delete(client_id: str) -> Any:
    if client_id == CONSOLE_CLIENT_ID:
        return _system_client()
    if request.form.get("confirm") != "yes":
        # The confirmation box is checked by the browser too; the server decides.
        return see_other(url_for("console.client", client_id=client_id))
    admin_services().clients.delete(current_admin().actor, client_id)
    db.session.commit()
    return see_other(url_for("console.clients", done="deleted"))


def _system_client() -> Any:
    """Policy: the console's own registration is maintained by the login (``ensure_client``);
    changing it here would only lock administrators out until the next repair."""
    return render("admin/error.html", 409, message=InvalidClientMetadataError.public_message, code="system_client",
                  back=url_for("console.client", client_id=CONSOLE_CLIENT_ID))
