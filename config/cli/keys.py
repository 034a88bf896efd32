"""``flask keys ...``: the token signing keys: list, ensure (create missing ones), rotate;
the changes go through the audited key operations as ``admin:cli``."""

from __future__ import annotations

from typing import Any

import click

from admin.cli import OperatorGroup
from common.cli import transactional

from . import _admin, _cli_actor, _emit, _services

keys_cli = OperatorGroup("keys", help="Token signing keys.")


def _key_dict(k: Any) -> dict[str, Any]:
    return {"kid": k.kid, "alg": k.alg, "state": k.state, "created_at": k.created_at.isoformat(),
            "activated_at": k.activated_at.isoformat() if k.activated_at else None,
            "unpublish_after": k.unpublish_after.isoformat() if k.unpublish_after else None}


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
@transactional
def keys_list(as_json: bool) -> None:
    rows = _services().keys.all()
    _emit(as_json, [_key_dict(k) for k in rows], "\n".join(f"{k.kid}  {k.alg}  {k.state}" for k in rows) or "(no keys)")


@keys_cli.command("ensure")
@click.option("--json", "as_json", is_flag=True)
@transactional
def keys_ensure(as_json: bool) -> None:
    """Create missing active/next keys (idempotent; run after `db upgrade`)."""
    created = _admin().keys.ensure(_cli_actor())
    _emit(as_json, {"created": created}, "keys created" if created else "keys present")


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), default=None, help="Only this algorithm.")
@click.option("--if-due", is_flag=True, help="Only keys older than YIWANG_KEY_ROTATION_DAYS (for cron).")
@click.option("--json", "as_json", is_flag=True)
@transactional
def keys_rotate(alg: str | None, if_due: bool, as_json: bool) -> None:
    admin = _admin()
    if if_due:
        rows = admin.keys.rotate_if_due(_cli_actor(), admin.services.p.settings.key_rotation_days)
    else:
        rows = admin.keys.rotate(_cli_actor(), alg)
    _emit(as_json, [_key_dict(k) for k in rows], "\n".join(f"now active: {k.kid} ({k.alg})" for k in rows) or "nothing due")
