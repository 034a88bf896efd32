"""``flask --app wsgi admins ...``: bootstrap and manage administrators from the server's
command line (issue 6). Acts as ``admin:cli`` (see ``Actor.cli``); every change is
audited. Each command is one transaction: an error prints a message, exits 2 and
writes nothing."""

from __future__ import annotations

import json

import click
from flask import current_app
from flask.cli import AppGroup

from common.cli import OperatorCommand, OperatorErrorStyle, transactional
from common.db import db

from .actor import Actor
from .errors import RoleNotHeldError
from .roles import Role
from .service import AdminServices


class OperatorGroup(OperatorErrorStyle, AppGroup):
    """A group of operator commands (``flask --app wsgi GROUP ...``): its commands run in
    the app context (``AppGroup``) and every usage error prints ``error: …`` plus a hint
    to use ``--help``, exit code 2, like the domain errors of ``transactional`` (issue 11
    defect 7). Nested groups are built as ``OperatorGroup`` and added with
    ``add_command``."""

    command_class = OperatorCommand


admins_cli = OperatorGroup("admins", help="Administrators and their roles (bootstrap the first one with `grant`).")


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
    """Revoke a role. A role the account does not hold is an error (exit 2): the
    username or the role is probably not the one meant."""
    admin = _admin()
    account = admin.admins.account_by_username(username)
    if not admin.admins.revoke(Actor.cli(), account.id, role):
        raise RoleNotHeldError(f"account {account.id} role {role}",
                               public_message=f"Account {account.id} does not hold the role {role}.")
    out = {"account_id": account.id, "role": role, "changed": True}
    click.echo(json.dumps(out) if as_json else f"revoked: {role} of account {account.id}")


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
