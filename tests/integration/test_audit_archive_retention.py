"""Audit trail on real PostgreSQL, beyond the database (issue 6): signed checkpoints archived
to a file (`audit checkpoint --out`, `audit verify --checkpoint`) catch a truncated tail even
when the attacker also rewound the head and deleted the database checkpoints; tampering
with every column, deleting a middle row and truncating the tail are detected with the
append-only trigger bypassed as a superuser would; retention prunes whole chain prefixes
up to a signed checkpoint, which stays as the anchor `audit verify` starts from."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from common.audit import chain_for
from common.db import db
from common.models import AuditChainAnchor, AuditChainHead, AuditCheckpoint, AuditEvent
from tests.conftest import make_settings

ACTOR = "account:42"


@pytest.fixture
def settings(tmp_path, pg_template):
    return make_settings(tmp_path, pg_template, audit_retention_days=30)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str):
        return runner.invoke(args=list(args))

    return run


@pytest.fixture
def archive(tmp_path) -> Path:
    return tmp_path / "worm" / "checkpoints.jws"


def _json(result, expect_exit: int) -> Any:
    assert result.exit_code == expect_exit, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _record(services, n: int, actor: str = ACTOR) -> int:
    for i in range(n):
        services.audit.record("login.success", actor=actor, client_id="portal", ip="192.0.2.7", details={"n": i})
    db.session.commit()
    return chain_for(actor)


def _events(chain: int) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)))


def _as_superuser_replica() -> None:
    """The attacker is a database superuser: in replica mode no ordinary trigger fires, so
    the append-only trigger is silently bypassed (until the test's transaction ends)."""
    db.session.execute(text("SET LOCAL session_replication_role = replica"))


def _truncate_tail(chain: int, keep: int) -> None:
    """Delete every event after ``keep`` and rewind the head to match: chain and head agree."""
    rows = _events(chain)
    _as_superuser_replica()
    db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq > keep))
    db.session.execute(update(AuditChainHead).where(AuditChainHead.chain == chain)
                       .values(seq=keep, head_hash=rows[keep - 1].hash))
    db.session.commit()


# -- archived checkpoints ----------------------------------------------------------------------


def test_checkpoint_out_appends_to_the_archive_and_verifies(services, cli, archive):
    archive.parent.mkdir()
    _record(services, 2)
    first = _json(cli("audit", "checkpoint", "--out", str(archive), "--json"), 0)
    _record(services, 1)
    second = _json(cli("audit", "checkpoint", "--out", str(archive), "--json"), 0)
    assert archive.read_text().splitlines() == [first["jws"], second["jws"]]

    out = _json(cli("audit", "verify", "--checkpoint", str(archive), "--json"), 0)
    assert (out["ok"], out["checkpoints"], out["archived_checkpoints"]) == (True, 2, 2)
    assert cli("audit", "verify", "--checkpoint", str(archive)).stdout.startswith("audit trail OK")


def test_archive_detects_truncation_after_database_checkpoints_are_deleted(services, cli, archive):
    archive.parent.mkdir()
    chain = _record(services, 4)
    assert cli("audit", "checkpoint", "--out", str(archive)).exit_code == 0

    # The attacker deletes the last two events, rewinds the head, and deletes every
    # checkpoint the database holds: the database alone no longer shows anything.
    _truncate_tail(chain, keep=2)
    db.session.execute(delete(AuditCheckpoint))
    db.session.commit()
    assert _json(cli("audit", "verify", "--json"), 0)["ok"] is True

    out = _json(cli("audit", "verify", "--checkpoint", str(archive), "--json"), 1)
    assert out["first_broken"] == {"chain": chain, "seq": 4, "problem": "archive_mismatch", "event_id": None,
                                   "checkpoint_id": None, "archive_line": 1}
    result = cli("audit", "verify", "--checkpoint", str(archive))
    assert result.exit_code == 1
    assert f"chain {chain} seq 4: archive_mismatch" in result.stdout


def test_archive_detects_a_rewritten_last_event(services, cli, archive):
    """The attacker rewrites the last event's details, recomputes its hash and the head's."""
    from common.audit import entry_hash

    archive.parent.mkdir()
    chain = _record(services, 3)
    assert cli("audit", "checkpoint", "--out", str(archive)).exit_code == 0
    last = _events(chain)[-1]
    cols = {c.name: getattr(last, c.name) for c in AuditEvent.__table__.columns if c.name not in ("id", "hash")}
    cols["details"] = {"n": 99}
    forged = entry_hash(cols)
    _as_superuser_replica()
    db.session.execute(update(AuditEvent).where(AuditEvent.id == last.id).values(details=cols["details"], hash=forged))
    db.session.execute(update(AuditChainHead).where(AuditChainHead.chain == chain).values(head_hash=forged))
    db.session.execute(delete(AuditCheckpoint))
    db.session.commit()
    out = _json(cli("audit", "verify", "--checkpoint", str(archive), "--json"), 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["seq"], out["first_broken"]["problem"]) == (
        chain, 3, "archive_mismatch")


def test_forged_archived_checkpoint_is_reported_with_its_line(services, cli, archive):
    archive.parent.mkdir()
    _record(services, 2)
    jws = _json(cli("audit", "checkpoint", "--json"), 0)["jws"]
    header, payload, signature = jws.split(".")
    archive.write_text(f"# archived checkpoints\n{jws}\n{header}.{payload}.{signature[:-4]}AAAA\n")
    out = _json(cli("audit", "verify", "--checkpoint", str(archive), "--json"), 1)
    assert out["first_broken"]["problem"] == "archive_signature"
    assert out["first_broken"]["archive_line"] == 3
    assert out["archived_checkpoints"] == 2


def test_archive_that_is_not_checkpoints_is_refused(services, cli, archive):
    archive.parent.mkdir()
    archive.write_text("hello world\n")
    result = cli("audit", "verify", "--checkpoint", str(archive))
    assert result.exit_code == 2
    assert "line 1: not a compact JWS" in result.output


# -- tampering, as a superuser would ------------------------------------------------------------


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("actor", "account:666", "modified"),
    ("action", "login.failure", "modified"),
    ("target", "account:7", "modified"),
    ("outcome", "denied", "modified"),
    ("reason", "invalid_credentials", "modified"),
    ("client_id", "other-portal", "modified"),
    ("ip_hash", "x" * 43, "modified"),
    ("details", {"n": 1000}, "modified"),
    ("at", None, "modified"),
    ("prev_hash", "f" * 64, "prev_hash"),
])
def test_any_modified_column_is_detected(services, cli, column, value, problem):
    chain = _record(services, 4)
    victim = _events(chain)[1]
    if column == "at":
        value = victim.at - timedelta(hours=1)
    _as_superuser_replica()
    db.session.execute(update(AuditEvent).where(AuditEvent.id == victim.id).values({column: value}))
    db.session.commit()
    out = _json(cli("audit", "verify", "--json"), 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["seq"], out["first_broken"]["problem"]) == (
        chain, 2, problem)


def test_deleted_middle_row_is_detected_as_superuser(services, cli):
    chain = _record(services, 5)
    _as_superuser_replica()
    db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == 3))
    db.session.commit()
    out = _json(cli("audit", "verify", "--json"), 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["seq"], out["first_broken"]["problem"]) == (
        chain, 3, "missing")


def test_truncated_tail_with_rewound_head_is_detected_by_database_checkpoints(services, cli):
    chain = _record(services, 5)
    checkpoint_id = _json(cli("audit", "checkpoint", "--json"), 0)["checkpoint_id"]
    _truncate_tail(chain, keep=3)
    out = _json(cli("audit", "verify", "--json"), 1)
    assert out["first_broken"] == {"chain": chain, "seq": 5, "problem": "checkpoint_mismatch", "event_id": None,
                                   "checkpoint_id": checkpoint_id, "archive_line": None}


# -- retention -------------------------------------------------------------------------------


def _prune(cli, *args: str) -> Any:
    return cli("audit", "prune", *args, "--json")


def test_prune_keeps_the_trail_verifiable_from_the_checkpoint_anchor(services, cli, clock, archive):
    archive.parent.mkdir()
    chain = _record(services, 4)
    old = _json(cli("audit", "checkpoint", "--out", str(archive), "--json"), 0)
    clock.advance(40 * 86400)
    _record(services, 2)
    assert cli("audit", "checkpoint", "--out", str(archive)).exit_code == 0
    fourth_hash = _events(chain)[3].hash

    result = _json(_prune(cli), 0)
    assert result["checkpoint_id"] == old["checkpoint_id"]
    assert chain in result["chains"] and result["events"] >= 4

    remaining = _events(chain)
    assert [r.seq for r in remaining] == [5, 6]
    anchor = db.session.get(AuditChainAnchor, chain)
    assert (anchor.seq, anchor.hash, anchor.checkpoint_id) == (4, fourth_hash, old["checkpoint_id"])
    # Both the database checkpoints and the archive (whose first entry covers pruned
    # events) still verify from the anchor.
    out = _json(cli("audit", "verify", "--checkpoint", str(archive), "--json"), 0)
    assert out["anchored_chains"] >= 1 and out["archived_checkpoints"] == 2
    # The prune is itself an audit event.
    prune = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.prune")).one()
    assert prune.details["checkpoint_id"] == old["checkpoint_id"] and prune.details["events"] == result["events"]


def test_after_pruning_tampering_is_still_detected(services, cli, clock):
    chain = _record(services, 3)
    assert cli("audit", "checkpoint").exit_code == 0
    clock.advance(31 * 86400)
    _record(services, 3)
    _json(_prune(cli), 0)

    # Deleting the first kept event: the chain no longer links to its anchor.
    first = _events(chain)[0]
    _as_superuser_replica()
    db.session.execute(delete(AuditEvent).where(AuditEvent.id == first.id))
    db.session.commit()
    out = _json(cli("audit", "verify", "--json"), 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["seq"], out["first_broken"]["problem"]) == (
        chain, 4, "missing")


def test_a_forged_anchor_is_detected(services, cli, clock):
    chain = _record(services, 3)
    assert cli("audit", "checkpoint").exit_code == 0
    clock.advance(31 * 86400)
    _record(services, 2)
    _json(_prune(cli), 0)
    # The attacker moves the anchor forward to hide more events: no checkpoint signed it.
    rows = _events(chain)
    db.session.execute(update(AuditChainAnchor).where(AuditChainAnchor.chain == chain)
                       .values(seq=rows[0].seq, hash=rows[0].hash))
    db.session.commit()
    out = _json(cli("audit", "verify", "--json"), 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["problem"]) == (chain, "anchor_signature")


def test_the_trigger_still_refuses_deleting_unanchored_events(services, cli, clock):
    chain = _record(services, 2)
    assert cli("audit", "checkpoint").exit_code == 0
    clock.advance(31 * 86400)
    _record(services, 2)
    _json(_prune(cli), 0)
    with pytest.raises(DBAPIError, match="append-only"), db.session.begin_nested():
        db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain))
    assert [r.seq for r in _events(chain)] == [3, 4]


def test_prune_refuses_a_broken_trail_and_deletes_nothing(services, cli, clock):
    chain = _record(services, 3)
    assert cli("audit", "checkpoint").exit_code == 0
    clock.advance(31 * 86400)
    _as_superuser_replica()
    db.session.execute(update(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == 2)
                       .values(outcome="denied"))
    db.session.commit()
    result = _prune(cli)
    assert result.exit_code == 2
    assert "does not verify" in result.output
    assert len(_events(chain)) == 3
    assert db.session.scalar(select(func.count()).select_from(AuditChainAnchor)) == 0


def test_prune_respects_the_retention_setting(services, cli, clock):
    _record(services, 2)
    assert cli("audit", "checkpoint").exit_code == 0
    # The checkpoint is younger than the 30-day retention: nothing qualifies.
    out = _json(_prune(cli), 0)
    assert (out["checkpoint_id"], out["events"]) == (None, 0)
    # An explicit date inside the retention period is refused.
    too_recent = (clock.now() - timedelta(days=5)).date().isoformat()
    result = cli("audit", "prune", "--before", too_recent)
    assert result.exit_code == 2 and "retention" in result.output
    assert db.session.scalar(select(func.count()).select_from(AuditChainAnchor)) == 0


def test_retention_zero_keeps_everything_unless_told(app, cli, tmp_path, pg_template, services):
    app.config["YIWANG_SETTINGS"] = make_settings(tmp_path, pg_template, audit_retention_days=0)
    _record(services, 1)
    result = cli("audit", "prune")
    assert result.exit_code == 2 and "keep forever" in result.output


# -- export -----------------------------------------------------------------------------------


def test_export_writes_json_lines_in_range_and_is_audited(services, cli, clock, tmp_path):
    start = clock.now()
    _record(services, 2)
    clock.advance(3600)
    services.audit.record("token.issue", actor="client:portal", target="account:9", client_id="portal",
                          details={"grant_type": "authorization_code"})
    db.session.commit()
    clock.advance(3600)
    _record(services, 1)
    out = tmp_path / "export.jsonl"
    since = (start + timedelta(minutes=30)).isoformat()
    until = (start + timedelta(minutes=90)).isoformat()
    result = cli("audit", "export", "--since", since, "--until", until, "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["action"] for line in lines] == ["token.issue"]
    event = db.session.get(AuditEvent, lines[0]["id"])
    assert lines[0]["hash"] == event.hash and lines[0]["seq"] == event.seq
    assert "exported 1 events" in result.stdout
    # The console's and the API's export event (issue 11: one audited layer), by the CLI.
    audited = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.audit.export")).one()
    assert (audited.actor, audited.details) == ("admin:cli", {"since": since, "until": until})

    bad = cli("audit", "export", "--since", "yesterday", "--out", str(out))
    assert bad.exit_code == 2 and "ISO 8601" in bad.output
