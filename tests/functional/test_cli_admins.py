"""``flask admins grant/revoke/list`` (admin/cli.py): bootstrap of the first
administrator, audited as admin:cli; unknown users and roles exit non-zero with a clear
message and write nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from admin.models import AdminRole
from admin.service import AdminServices
from common.db import db
from common.models import AuditEvent


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(args=list(args))
        assert result.exit_code == code, (result.output, result.exception)
        return result

    return run


def _roles(services, username: str) -> frozenset[str]:
    db.session.expire_all()
    account = services.accounts.find_by_identifier(username)
    return AdminServices(services).admins.roles_of(account.id)


def test_grant_list_revoke(cli, services, user):
    out = json.loads(cli("admins", "grant", "--username", "alice", "--role", "superadmin", "--json").stdout)
    assert out["role"] == "superadmin" and out["changed"] is True
    assert "already held" in cli("admins", "grant", "--username", "alice", "--role", "superadmin").stdout
    cli("admins", "grant", "--username", "ALICE", "--role", "auditor")
    assert _roles(services, "alice") == {"superadmin", "auditor"}
    listed = json.loads(cli("admins", "list", "--json").stdout)
    assert listed == [{"account_id": out["account_id"], "username": "alice", "roles": ["auditor", "superadmin"]}]
    assert "alice" in cli("admins", "list").stdout
    cli("admins", "revoke", "--username", "alice", "--role", "auditor")
    assert _roles(services, "alice") == {"superadmin"}
    db.session.expire_all()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("admin.admins.%"))
                                .order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor, e.details["role"]) for e in events] == [
        ("admin.admins.grant", "admin:cli", "superadmin"),
        ("admin.admins.grant", "admin:cli", "auditor"),
        ("admin.admins.revoke", "admin:cli", "auditor"),
    ]
    # No personal data: the account is a pseudonymous id, never the username.
    assert all("alice" not in json.dumps(e.details) and e.target == f"account:{out['account_id']}" for e in events)


def test_unknown_user_and_role_fail_clearly_and_write_nothing(cli, user):
    result = cli("admins", "grant", "--username", "nobody", "--role", "auditor", code=2)
    assert "No person account with this username." in result.stderr
    result = cli("admins", "grant", "--username", "alice", "--role", "root", code=2)
    assert "'root' is not one of" in result.output
    result = cli("admins", "revoke", "--username", "nobody", "--role", "auditor", code=2)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(AdminRole)) == 0


def test_empty_list(cli):
    assert cli("admins", "list").stdout.strip() == "(no administrators)"
