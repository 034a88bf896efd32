"""``flask users ...``: create, list, lock and unlock person accounts; the changes go
through the audited account operations (admin/accounts.py) as ``admin:cli``."""

from __future__ import annotations

import sys
from typing import Any

import click

from admin.cli import OperatorGroup
from common.cli import transactional
from common.db import db

from . import _admin, _cli_actor, _emit, _services

users_cli = OperatorGroup("users", help="Create and manage accounts.")


def _read_password(value: str | None) -> str:
    """The password of ``users create``: ``-`` reads the first line of stdin; none given
    prompts (hidden, twice) when stdin is a terminal. A value on the command line stays in
    the shell history and shows in the process list, so the help steers away from it."""
    if value == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise click.UsageError("No password: pass --password - and write it to stdin, or run in a terminal "
                               "to be prompted.")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_cli.command("create")
@click.option("--username", default=None)
@click.option("--password", default=None, metavar="PASSWORD|-",
              help="At least 8 characters, not a common password. Prefer '--password -' (reads the first line "
                   "of stdin) or leave it out to be prompted (hidden) in a terminal: a password written on the "
                   "command line stays in the shell history and shows in the process list.")
@click.option("--name", default=None, help="Display name (stored encrypted).")
@click.option("--phone", default=None, help="Mainland mobile number (stored encrypted, found by blind index).")
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_create(username: str | None, password: str | None, name: str | None, phone: str | None,
                 as_json: bool) -> None:
    """Create a person account with a password (audited as admin:cli)."""
    # Read (or prompt) before any database work: no transaction waits on the operator's typing.
    secret = _read_password(password)
    account = _admin().accounts.create(_cli_actor(), username=username, password=secret, name=name, phone=phone)
    _emit(as_json, {"id": account.id, "username": account.username}, f"created account {account.id} ({account.username or 'phone login'})")


def _account_dict(a: Any) -> dict[str, Any]:
    return {"id": a.id, "username": a.username, "kind": a.kind, "status": a.status,
            "has_phone": a.phone_index is not None, "created_at": a.created_at.isoformat()}


@users_cli.command("list")
@click.option("--offset", default=0, type=click.IntRange(0))
@click.option("--limit", default=100, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_list(offset: int, limit: int, as_json: bool) -> None:
    rows = _services().accounts.list(offset=offset, limit=limit)
    _emit(as_json, [_account_dict(a) for a in rows],
          "\n".join(f"{a.id}  {a.username or '-'}  {a.status}" for a in rows) or "(no accounts)")


@users_cli.command("lock")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_lock(identifier: str, as_json: bool) -> None:
    """Lock an account (username): logins and token refreshes stop, its SSO sessions end
    and the portals get back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.7)."""
    admin = _admin()
    account = admin.services.accounts.get_by_username(identifier)
    result = admin.accounts.lock(_cli_actor(), account.id)
    # The logout tokens go out only once the lock is committed (as for a citizen's logout);
    # failed deliveries stay recorded for `flask logout deliver`.
    db.session.commit()
    delivered = admin.sessions.deliver(result.ended)
    data = {**_account_dict(account), "sessions_ended": len(result.ended), "logouts_delivered": delivered}
    _emit(as_json, data, f"{account.username or account.id}: locked, {len(result.ended)} session(s) ended")


@users_cli.command("unlock")
@click.argument("identifier")
@click.option("--json", "as_json", is_flag=True)
@transactional
def users_unlock(identifier: str, as_json: bool) -> None:
    """Make a locked account (username or phone) active again."""
    admin = _admin()
    account = admin.services.accounts.get_by_username(identifier)
    admin.accounts.unlock(_cli_actor(), account.id)
    _emit(as_json, _account_dict(account), f"{account.username or account.id}: {account.status}")
