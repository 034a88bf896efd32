"""``flask subjects resolve``: audited re-identification of a portal's sub for a lawful
request (issue 5)."""

from __future__ import annotations

import sys
from typing import Any

import click

from admin.cli import OperatorGroup
from common.cli import transactional

from . import _emit, _services

subjects_cli = OperatorGroup("subjects", help="Subject identifiers: audited re-identification for lawful requests.")


@transactional
def _reidentify(client_id: str, sub: str, reason: str, requested_by: str) -> tuple[Any, str]:
    from idp.reidentification import LawfulRequest

    resolver = _services().reidentification
    lawful = LawfulRequest.parse(reason, requested_by)
    return resolver.resolve(client_id, sub, request=lawful, actor="admin:cli"), resolver.reason_hash(lawful)


@subjects_cli.command("resolve")
@click.option("--client-id", required=True, help="The portal that received the sub.")
@click.option("--sub", required=True, help="The sub the portal holds (pairwise or public).")
@click.option("--reason", required=True, help="Why (10-500 characters); audited as a keyed hash and length.")
@click.option("--requested-by", required=True, help="Requesting authority and case reference, e.g. AUTHORITY/REF.")
@click.option("--json", "as_json", is_flag=True)
def subjects_resolve(client_id: str, sub: str, reason: str, requested_by: str, as_json: bool) -> None:
    """Map a portal's sub back to the account, for a lawful request only. Every call, match
    or not, is recorded in the audit trail (subject.reidentify, actor admin:cli). Prints
    identifiers and assurance level, never the name, ID number or phone number; exits 1
    when no account has this sub at this client."""
    found, reason_hash = _reidentify(client_id, sub, reason, requested_by)
    if found is None:
        click.echo(f"no account has this sub at client {client_id} (the attempt was audited)", err=True)
        sys.exit(1)
    data = {**found.as_dict(), "reason_hash": reason_hash}
    _emit(as_json, data,
          f"account {found.account_id}  kind {found.kind}  username {found.username or '-'}  "
          f"realname_level {found.realname_level or '-'}  status {found.status}\n"
          f"disclosed to {', '.join(found.disclosed_to)} between {found.first_disclosed_at.isoformat()} and "
          f"{found.last_disclosed_at.isoformat()}\n"
          f"audited; reason recorded as keyed hash {reason_hash}")
