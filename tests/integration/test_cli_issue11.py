"""Issue 11 defects 2, 6 and 7 in the operator command line (config/cli/, admin/cli.py)
against the test app and real PostgreSQL: every command that changes state is audited as
``admin:cli`` through the audited admin operations; ``clients create --claim`` keeps the
client's name; one error style (``error: …``, exit 2) for every operator error; and a
password that need not go through the shell history."""

from __future__ import annotations

import ast
import inspect
import json
import pkgutil
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest
from cryptography.hazmat.primitives import serialization
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select, update

import config.cli
from common.db import db
from common.models import AuditEvent
from idp.models import Account, SigningKey
from tests.support.pki import make_crl, three_provinces

USCC = "91350100M000100Y43"
PASSWORD = "a long enough secret"  # noqa: S105 - test account


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str, ok: bool = True, input: str | None = None):
        result = runner.invoke(args=list(args), input=input)
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return run


def _json(result) -> Any:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # --json prints one JSON document on one line
    return json.loads(lines[0])


def _events(prefix: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action.like(prefix + "%"))
                                   .order_by(AuditEvent.id)))


def _trail(prefix: str) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.actor, e.target) for e in _events(prefix)]


def _write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return str(path)


def _bundle(tmp_path: Path, province) -> str:
    return _write(tmp_path, f"{province.province}.pem", b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in (province.root.cert, province.intermediate.cert)))


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


# -- defect 2: every state change audited as admin:cli ------------------------------------


def test_users_create_and_unlock_are_audited_as_the_cli(cli):
    created = _json(cli("users", "create", "--username", "carol", "--password", PASSWORD, "--name", "李四",
                        "--phone", "13912345678", "--json"))
    assert set(created) == {"id", "username"} and created["username"] == "carol"
    target = f"account:{created['id']}"
    [event] = _events("admin.accounts.create")
    assert (event.actor, event.target, event.outcome) == ("admin:cli", target, "ok")
    # What was set, never the values (no username, name, phone or password in the trail).
    assert event.details == {"fields": ["name", "phone", "username"]}

    cli("users", "lock", "carol")
    unlocked = _json(cli("users", "unlock", "carol", "--json"))
    assert unlocked["status"] == "active"
    assert _trail("admin.accounts.") == [("admin.accounts.create", "admin:cli", target),
                                         ("admin.accounts.lock", "admin:cli", target),
                                         ("admin.accounts.unlock", "admin:cli", target)]
    # Unlocking an active account changes nothing and records nothing.
    assert _json(cli("users", "unlock", "carol", "--json"))["status"] == "active"
    assert len(_events("admin.accounts.unlock")) == 1


def test_refused_users_create_records_nothing(cli):
    result = cli("users", "create", "--username", "dave", "--password", "short", ok=False)
    assert result.exit_code == 2
    assert _events("admin.accounts.") == []


def test_keys_rotate_is_audited_as_the_cli(cli):
    rotated = _json(cli("keys", "rotate", "--alg", "ES256", "--json"))
    [event] = _events("admin.keys.")
    assert (event.action, event.actor) == ("admin.keys.rotate", "admin:cli")
    assert event.details["kids"] == [rotated[0]["kid"]] and event.details["alg"] == "ES256"


def test_keys_rotate_if_due_is_audited_only_when_it_rotates(cli, clock):
    assert _json(cli("keys", "rotate", "--if-due", "--json")) == []
    assert _events("admin.keys.") == []  # cron runs it often: "nothing due" is no event
    clock.advance(91 * 86400)
    rotated = _json(cli("keys", "rotate", "--if-due", "--json"))
    assert sorted(k["alg"] for k in rotated) == ["ES256", "RS256"]
    [event] = _events("admin.keys.")
    assert (event.action, event.actor) == ("admin.keys.rotate", "admin:cli")
    assert sorted(event.details["kids"]) == sorted(k["kid"] for k in rotated) and event.details["if_due"] is True


def test_keys_ensure_is_audited_when_it_creates_keys(cli, services, clock):
    assert _json(cli("keys", "ensure", "--json")) == {"created": False}
    assert _events("admin.keys.") == []
    # The next ES256 key is gone (as after a restore of an old backup): ensure makes one.
    db.session.execute(update(SigningKey).where(SigningKey.alg == "ES256", SigningKey.state == "next")
                       .values(state="retired", retired_at=clock.now(), unpublish_after=clock.now()))
    db.session.commit()
    assert _json(cli("keys", "ensure", "--json")) == {"created": True}
    [event] = _events("admin.keys.")
    new = db.session.scalars(select(SigningKey).where(SigningKey.alg == "ES256", SigningKey.state == "next")).one()
    assert (event.action, event.actor, event.details) == ("admin.keys.ensure", "admin:cli", {"kids": [new.kid]})


def test_ca_and_crl_commands_are_audited_as_the_cli(cli, tmp_path, provinces):
    fujian = provinces[0]
    added = _json(cli("certificates", "ca", "add", "--name", fujian.name, "--province", fujian.province,
                      "--pem", _bundle(tmp_path, fujian), "--sm2-signer-id", "ABCDEFGH12345678", "--json"))
    # The SM2 signer ID option still sets the profile (issue 10).
    assert added["profile"]["sm2_signer_id"] == "ABCDEFGH12345678"
    ca_id = str(added["id"])
    cli("certificates", "ca", "disable", ca_id)
    cli("certificates", "ca", "enable", ca_id)
    crl = _write(tmp_path, "fj.crl", make_crl(fujian.intermediate, [1, 2], number=5))
    cli("certificates", "crl", "load", "--ca", ca_id, crl)
    events = _events("admin.ca.")
    assert [(e.action, e.actor, e.details["ca_id"]) for e in events] == [
        (f"admin.ca.{verb}", "admin:cli", added["id"]) for verb in ("add", "disable", "enable", "load_crl")]
    assert events[-1].details["crl_number"] == 5 and events[-1].details["entries"] == 2


@pytest.fixture
def crl_server(provinces) -> Iterator[str]:
    crl = make_crl(provinces[1].intermediate, revoked=[4242], number=7)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.send_header("Content-Length", str(len(crl)))
            self.end_headers()
            self.wfile.write(crl)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ca.crl"
    finally:
        server.shutdown()
        server.server_close()


def test_crl_refresh_is_audited_as_the_cli(cli, tmp_path, provinces, crl_server):
    guangdong = provinces[1]
    added = _json(cli("certificates", "ca", "add", "--name", guangdong.name, "--province", guangdong.province,
                      "--pem", _bundle(tmp_path, guangdong), "--crl-url", crl_server, "--json"))
    report = _json(cli("certificates", "crl", "refresh", "--json"))
    assert report == [{"ca_id": added["id"], "ok": True, "crl_number": 7, "entries": 1}]
    [event] = _events("admin.ca.load_crl")
    assert (event.actor, event.details["ca_id"], event.details["crl_number"]) == ("admin:cli", added["id"], 7)


def test_legal_person_and_mandate_commands_are_audited_as_the_cli(cli, user):
    person = _json(cli("certificates", "legal-person", "create", "--uscc", USCC, "--name", "示例科技有限公司",
                       "--by", "root", "--json"))
    granted = _json(cli("certificates", "mandate", "grant", "--agent", "alice", "--uscc", USCC, "--scope", "tax",
                        "--days", "30", "--by", "root", "--json"))
    revoked = _json(cli("certificates", "mandate", "revoke", str(granted["mandate_id"]), "--by", "root", "--json"))
    assert revoked == {"mandate_id": granted["mandate_id"], "revoked": True}
    target = f"legal_person:{person['id']}"
    events = _events("admin.legal.")
    assert [(e.action, e.actor, e.target) for e in events] == [
        ("admin.legal.create", "admin:cli", target),
        ("admin.legal.grant_mandate", "admin:cli", target),
        ("admin.legal.revoke_mandate", "admin:cli", target),
    ]
    assert events[1].details["mandate_id"] == granted["mandate_id"] == events[2].details["mandate_id"]
    # Pseudonymous ids only: no company name, no agent's username.
    assert not any("示例" in json.dumps(e.details, ensure_ascii=False) or "alice" in json.dumps(e.details)
                   for e in events)
    # A second revocation is refused as the console refuses it, and records nothing more.
    again = cli("certificates", "mandate", "revoke", str(granted["mandate_id"]), "--by", "root", ok=False)
    assert again.exit_code == 2 and again.stderr.startswith("error: ")
    assert len(_events("admin.legal.revoke_mandate")) == 1


def test_realname_import_and_key_rotation_are_audited_without_personal_data(cli, tmp_path):
    csv_file = _write(tmp_path, "registry.csv", "name,id_number,phone\n张三,11010519491231002X,13800138000\n"
                                                "李四,440524188001010014,\n坏,123,\n")
    result = _json(cli("realname", "import-registry", csv_file, "--json"))
    assert (result["imported"], result["updated"], result["rejected"]) == (2, 0, 1)
    [event] = _events("admin.realname.")
    assert (event.action, event.actor) == ("admin.realname.import_registry", "admin:cli")
    assert event.details == {"imported": 2, "updated": 0, "rejected": 1}

    rotated = _json(cli("realname", "rotate-keys", "--json"))
    [_, event] = _events("admin.realname.")
    assert (event.action, event.actor) == ("admin.realname.rotate_keys", "admin:cli")
    assert event.details == {"reencrypted": rotated["reencrypted"], "active_key": rotated["active_key"]}


def test_audit_prune_is_recorded_as_the_cli(app, cli, clock, tmp_path, pg_template):
    from tests.conftest import make_settings

    app.config["YIWANG_SETTINGS"] = make_settings(tmp_path, pg_template, audit_retention_days=30)
    cli("audit", "checkpoint")
    clock.advance(31 * 86400)
    cli("audit", "prune", "--json")
    [event] = _events("audit.prune")
    assert event.actor == "admin:cli"


def test_audit_checkpoint_verify_and_export_are_audited_as_the_cli(cli, tmp_path):
    archive = tmp_path / "checkpoints.jws"
    made = _json(cli("audit", "checkpoint", "--out", str(archive), "--json"))
    [checkpoint] = _events("audit.checkpoint")
    assert (checkpoint.actor, checkpoint.details) == ("admin:cli", {"checkpoint_id": made["checkpoint_id"],
                                                                    "archived": True})
    assert archive.read_text().strip() == made["jws"]

    # On demand (as the console's button) and scheduled (cron's --record): both audited.
    cli("audit", "verify", "--checkpoint", str(archive))
    cli("audit", "verify", "--record")
    assert [(e.action, e.actor, e.outcome) for e in _events("admin.audit.verify") + _events("audit.verify")] == [
        ("admin.audit.verify", "admin:cli", "ok"), ("audit.verify", "admin:cli", "ok")]
    assert _events("admin.audit.verify")[0].details["archived_checkpoints"] == 1

    cli("audit", "export", "--action", "audit.", "--out", str(tmp_path / "out.jsonl"))
    [export] = _events("admin.audit.export")
    assert (export.actor, export.details) == ("admin:cli", {"action": "audit."})


def test_audit_alerts_use_the_configured_thresholds(app, cli, services, tmp_path, pg_template):
    from tests.conftest import make_settings

    for _ in range(3):
        services.audit.record("login.failure", actor="anonymous", target="account:7", outcome="denied",
                              reason="invalid_credentials", ip="198.51.100.1")
    db.session.commit()
    # Three failures are below the default per-account threshold: no alert.
    assert not [a for a in _json(cli("audit", "alerts", "--json")) if a["kind"] == "login_failures_account"]
    app.config["YIWANG_SETTINGS"] = make_settings(tmp_path, pg_template, alert_login_failures_per_account=3)
    [alert] = [a for a in _json(cli("audit", "alerts", "--json")) if a["kind"] == "login_failures_account"]
    assert (alert["key"], alert["count"], alert["threshold"]) == ("account:7", 3, 3)


def test_demo_goes_through_the_audited_operations(cli):
    # Events of one transaction are written chain by chain: compare them unordered.
    first = _json(cli("demo", "--json"))
    assert sorted((a, actor) for a, actor, _ in _trail("admin.")) == [
        ("admin.accounts.create", "admin:cli"),
        ("admin.clients.create", "admin:cli"),
        ("admin.realname.import_registry", "admin:cli"),
    ]
    assert _trail("admin.clients.")[0][2] == f"client:{first['client_id']}"
    # Run again, it refreshes the client's secret (audited) and the registry samples.
    second = _json(cli("demo", "--json"))
    assert second["client_id"] == first["client_id"] and second["client_secret"] != first["client_secret"]
    assert sorted(a for a, _, _ in _trail("admin.")) == sorted([
        "admin.accounts.create", "admin.clients.create", "admin.realname.import_registry",
        "admin.clients.rotate_secret", "admin.realname.import_registry"])


# -- defect 6: option loops keep the command's options ------------------------------------


def test_claim_options_keep_the_client_name(cli):
    created = _json(cli("clients", "create", "--name", "Tax Portal", "--redirect-uri", "https://tax.example.test/cb",
                        "--scope", "openid", "--scope", "profile", "--claim", "name=letters",
                        "--required-claim", "preferred_username=account", "--json"))
    shown = _json(cli("clients", "show", created["client_id"], "--json"))
    assert shown["name"] == "Tax Portal"
    assert set(shown["claim_policy"]) == {"name", "preferred_username"}


def _command_callbacks(app) -> Iterator[tuple[str, Any]]:
    """Every operator command of ours (the modules of config/cli/, and admin/cli.py) with
    its undecorated callback."""

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, Any]]:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")
        elif command.callback is not None:
            callback = inspect.unwrap(command.callback)
            if callback.__module__ == "admin.cli" or callback.__module__.startswith("config.cli."):
                yield path, callback

    for name, command in app.cli.commands.items():
        yield from walk(command, name)


def test_no_option_loop_rebinds_a_command_parameter(app):
    """Issue 11 defect 6, for every command: inside a loop, no name the loop binds or
    assigns may be one of the command's parameters (the --claim loop renamed the client)."""
    checked = 0
    modules = set()
    for path, callback in _command_callbacks(app):
        modules.add(callback.__module__)
        tree = ast.parse(textwrap.dedent(inspect.getsource(callback)))
        fn = tree.body[0]
        assert isinstance(fn, ast.FunctionDef)
        params = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
        for loop in (n for n in ast.walk(fn) if isinstance(n, ast.For | ast.AsyncFor | ast.comprehension)):
            scope = [loop.target] + (list(loop.body) if isinstance(loop, ast.For | ast.AsyncFor) else [])
            bound = {n.id for node in scope for n in ast.walk(node)
                     if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            assert not bound & params, f"{path}: a loop rebinds {sorted(bound & params)}"
        checked += 1
    assert checked >= 35  # every command of config/cli/ and admin/cli.py (38 today)
    # Every command group module of the package was walked: none is left unregistered.
    groups = {f"config.cli.{m.name}" for m in pkgutil.iter_modules(config.cli.__path__)}
    assert groups and groups | {"admin.cli"} == modules


# -- defect 7: one error style, revoke of a role not held, password off the command line ---


@pytest.mark.parametrize("args", [
    ("clients", "create", "--redirect-uri", "https://x.example.test/cb"),  # missing --name
    ("clients", "create", "--name", "X", "--grant-type", "password"),  # not one of the choices
    ("clients", "nope"),  # no such command
    ("users", "list", "--limit", "0"),  # out of range
    ("users", "list", "--bogus"),  # no such option
    ("certificates", "ca", "disable", "abc"),  # not an integer
    ("certificates", "crl", "load", "--ca", "1", "/nonexistent/file.crl"),  # unreadable file
    ("realname", "generate-registry", "--count", "1", "--out", "/nonexistent/dir/x.csv"),  # lazily opened file
    ("admins", "grant", "--username", "alice", "--role", "root"),
    ("audit", "export", "--since", "yesterday", "--out", "-"),  # custom parameter type
    ("audit", "prune"),  # a usage error raised by the command itself (retention 0 = keep forever)
    ("demo", "--bogus"),
    ("keys", "rotate", "--alg", "HS256"),
])
def test_usage_errors_print_one_error_line_and_a_help_hint(cli, args):
    result = cli(*args, ok=False)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: "), result.stderr
    assert "Usage:" not in result.stderr and "Error:" not in result.stderr
    assert lines[1].startswith("Try '") and lines[1].endswith(" --help' for help.")


def test_domain_errors_keep_the_same_style(cli):
    result = cli("clients", "show", "nope", ok=False)
    assert (result.exit_code, result.stderr) == (2, "error: No such client.\n")


def test_help_still_works(cli):
    result = cli("clients", "create", "--help")
    assert "Usage:" in result.stdout and "--claim NAME=PURPOSE" in result.stdout
    assert "Usage:" in cli("certificates", "ca", "--help").stdout
    # A group without its subcommand shows its help, as before.
    assert "Commands:" in cli("clients", ok=False).output


def test_admins_revoke_of_a_role_not_held_fails(cli, user):
    result = cli("admins", "revoke", "--username", "alice", "--role", "auditor", "--json", ok=False)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "auditor" in result.stderr
    assert _events("admin.admins.") == []


def _logs_in(http, username: str, password: str) -> bool:
    from tests.helpers import form_field

    page = http.get("/login")
    resp = http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                                     "interaction": "", "identifier": username, "password": password})
    return resp.status_code == 303


def test_users_create_reads_the_password_from_stdin(cli, http):
    created = _json(cli("users", "create", "--username", "carol", "--password", "-", "--json",
                        input=PASSWORD + "\n"))
    assert created["username"] == "carol"
    assert _logs_in(http, "carol", PASSWORD)
    # The policy applies to a password read from stdin too.
    result = cli("users", "create", "--username", "dave", "--password", "-", input="short\n", ok=False)
    assert result.exit_code == 2 and "at least 8 characters" in result.stderr


class _TerminalRunner(FlaskCliRunner):
    """A runner whose stdin reports a terminal, as an operator's interactive shell does."""

    def invoke(self, *args: Any, **kwargs: Any) -> Any:
        original = self.isolation

        def isolation(*a: Any, **k: Any) -> Any:
            from contextlib import contextmanager

            @contextmanager
            def cm() -> Iterator[Any]:
                with original(*a, **k) as streams:
                    sys.stdin.isatty = lambda: True  # type: ignore[method-assign]
                    yield streams

            return cm()

        self.isolation = isolation  # type: ignore[method-assign]
        try:
            return super().invoke(*args, **kwargs)
        finally:
            del self.isolation


def test_users_create_prompts_for_the_password_in_a_terminal(app, http):
    runner = _TerminalRunner(app)
    result = runner.invoke(args=["users", "create", "--username", "carol", "--json"],
                           input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Password" in result.output and "Repeat" in result.output
    # Hidden input: the password is not echoed.
    assert PASSWORD not in result.output
    assert _logs_in(http, "carol", PASSWORD)


def test_users_create_without_password_and_terminal_is_a_usage_error(cli):
    result = cli("users", "create", "--username", "carol", ok=False)
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert "--password -" in result.stderr
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Account)) == 0


def test_password_option_help_names_the_safer_forms(cli):
    text = " ".join(cli("users", "create", "--help").stdout.split())
    assert "--password -" in text and "prompt" in text and "shell history" in text


def test_prune_before_inside_retention_is_a_usage_error(app, cli, clock, tmp_path, pg_template):
    from tests.conftest import make_settings

    app.config["YIWANG_SETTINGS"] = make_settings(tmp_path, pg_template, audit_retention_days=30)
    result = cli("audit", "prune", "--before", (clock.now() - timedelta(days=5)).date().isoformat(), ok=False)
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "retention" in result.stderr
