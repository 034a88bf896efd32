"""``flask --app wsgi admins ...``: bootstrap and manage administrators from the server's
command line (issue 6). Acts as ``admin:cli`` (see ``Actor.cli``); every change is
audited. Each command is one transaction: an error prints a message, exits 2 and
writes nothing."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from common.cli import transactional
from common.db import db

from .actor import Actor
from .roles import Role
from .service import AdminServices

admins_cli = AppGroup("admins", help="Administrators and their roles (bootstrap the first one with `grant`).")


def _admin() -> AdminServices:
    return AdminServices(current_app.extensions["yiwang.provider"].services(db.session))


_ROLE = click.Choice([r.value for r in Role])


@admins_cli.command("grant")
@click.option("--username", required=True, help="Username of the person's account.")
@click.option("--role", required=True, type=_ROLE, help="Role to grant.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@transactional
def admins_grant(username: str, role: str, as_json: bool) -> None:
    """Grant a role. The administrator must also enrol a second factor (TOTP) before the
    console or the API accept them."""
    admin = _admin()
    account = admin.admins.account_by_username(username)
    changed = admin.admins.grant(Actor.cli(), account.id, role)
    out = {"account_id": account.id, "role": role, "changed": changed}
    click.echo(json.dumps(out) if as_json else
               f"{'granted' if changed else 'already held'}: {role} to account {account.id}")


@admins_cli.command("revoke")
@click.option("--username", required=True, help="Username of the person's account.")
@click.option("--role", required=True, type=_ROLE, help="Role to revoke.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@transactional
def admins_revoke(username: str, role: str, as_json: bool) -> None:
    admin = _admin()
    account = admin.admins.account_by_username(username)
    changed = admin.admins.revoke(Actor.cli(), account.id, role)
    out = {"account_id": account.id, "role": role, "changed": changed}
    click.echo(json.dumps(out) if as_json else
               f"{'revoked' if changed else 'not held'}: {role} of account {account.id}")


@admins_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@transactional
def admins_list(as_json: bool) -> None:
    rows = _admin().admins.all(Actor.cli())
    if as_json:
        click.echo(json.dumps([{"account_id": a.account_id, "username": a.username,
                                "roles": list(a.roles)} for a in rows]))
        return
    click.echo("\n".join(f"{a.account_id}  {a.username or '-'}  {', '.join(a.roles)}" for a in rows)
               or "(no administrators)")
