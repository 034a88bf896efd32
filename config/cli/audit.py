"""``flask audit ...``: the tamper-evident audit trail (DESIGN.md §7, issue 6): verify,
checkpoint (and archive), prune, export, alerts, status."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from flask import current_app

from admin.cli import OperatorGroup
from common.cli import transactional
from common.db import db

from . import _admin, _cli_actor, _emit

audit_cli = OperatorGroup("audit", help="The tamper-evident audit trail: verify, checkpoint (and archive), prune, export, alerts.")


class _Moment(click.ParamType):
    """An ISO 8601 date or date-time; without an offset it is taken as UTC."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T08:00+08:00)",
                      param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_DATE = _Moment()


def _read_archives(paths: tuple[str, ...]) -> list[str]:
    from common.audit import read_checkpoint_archive

    jws: list[str] = []
    for path in paths:
        try:
            jws.extend(read_checkpoint_archive(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"checkpoint archive {path}: {exc}") from exc
    return jws


@audit_cli.command("verify")
@click.option("--checkpoint", "archives", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Archived checkpoint file (one JWS per line, from `audit checkpoint --out`) kept outside the "
              "database, e.g. on WORM storage; repeatable. Detects a truncated tail even when the database "
              "checkpoints were deleted too.")
@click.option("--record", is_flag=True, help="Record it as the scheduled verification (`audit.verify`, cron) rather "
              "than an on-demand one (`admin.audit.verify`); the console status shows the latest of either.")
@click.option("--json", "as_json", is_flag=True)
@transactional
def audit_verify(archives: tuple[str, ...], record: bool, as_json: bool) -> None:
    """Walk every chain, recomputing hashes; check heads, retention anchors, signed
    checkpoints and archived ones. Exits 1 and names the first broken link of each chain
    when the trail was tampered with. Audited (actor ``admin:cli``), as every reading of
    the whole trail is."""
    from common.audit import describe

    report = _admin().audit.verify(_cli_actor(), archived=_read_archives(archives), scheduled=record)
    lines = [f"audit trail {'OK' if report.ok else 'BROKEN'}: {report.events} events in {report.chains} chains, "
             f"{report.checkpoints} checkpoints, {report.archived_checkpoints} archived checkpoints, "
             f"{report.anchored_chains} pruned chains"]
    for b in sorted(report.broken, key=lambda b: (b.chain, b.seq)):
        if b.chain >= 0:
            where = f"chain {b.chain} seq {b.seq}"
        else:
            where = f"archive line {b.archive_line}" if b.archive_line else f"checkpoint {b.checkpoint_id}"
        lines.append(f"  {where}: {b.problem} ({describe(b.problem)})")
    _emit(as_json, report.as_dict(), "\n".join(lines))
    if not report.ok:
        # Exit 1 after the event is committed: the failed check is on the trail too.
        db.session.commit()
        sys.exit(1)


@audit_cli.command("checkpoint")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Also append the signed checkpoint (one JWS line) to this archive file: keep it outside the "
              "database (WORM storage, another host) for `audit verify --checkpoint`.")
@click.option("--json", "as_json", is_flag=True)
@transactional
def audit_checkpoint(out: str | None, as_json: bool) -> None:
    """Sign every chain head with the active signing key and store the checkpoint (run
    from cron). Keep the JWS outside the database too (``--out``): a checkpoint the
    attacker cannot delete is what makes a consistent rewrite detectable."""

    def archive(jws: str, path: str = out or "") -> None:
        # Append-only and synced before the command commits: the archive never misses a
        # checkpoint the database has.
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(jws + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    checkpoint_id, at, jws = _admin().audit.checkpoint(_cli_actor(), archive=archive if out else None)
    _emit(as_json, {"checkpoint_id": checkpoint_id, "at": at.isoformat(), "jws": jws},
          f"checkpoint {checkpoint_id} at {at.isoformat()}\n{jws}")


@audit_cli.command("prune")
@click.option("--before", type=_DATE, default=None,
              help="Prune events up to the newest signed checkpoint taken at or before this date (ISO 8601, UTC "
              "unless an offset is given). Default: now minus YIWANG_AUDIT_RETENTION_DAYS.")
@click.option("--json", "as_json", is_flag=True)
@transactional
def audit_prune(before: datetime | None, as_json: bool) -> None:
    """Retention: delete whole chain prefixes up to a signed checkpoint, which stays as
    each chain's anchor so `audit verify` still proves what is kept. Refuses when the
    trail does not verify, or when ``--before`` would cut events still within
    YIWANG_AUDIT_RETENTION_DAYS; with retention 0 (keep forever) only an explicit
    ``--before`` prunes. The prune is itself an audit event (``audit.prune``, actor
    ``admin:cli``)."""
    admin = _admin()
    svc = admin.services
    days = current_app.config["YIWANG_SETTINGS"].audit_retention_days
    now = svc.p.clock.now()
    if before is None:
        if days == 0:
            raise click.UsageError("YIWANG_AUDIT_RETENTION_DAYS is 0 (keep forever): pass --before to prune anyway")
        before = now - timedelta(days=days)
    elif days and before > now - timedelta(days=days):
        raise click.UsageError(f"--before would prune events younger than the {days}-day retention")
    result = admin.audit.prune(_cli_actor(), before=before)
    data = {"before": before.isoformat(), "checkpoint_id": result.checkpoint_id,
            "checkpoint_at": result.checkpoint_at.isoformat() if result.checkpoint_at else None,
            "events": result.events, "chains": result.chains}
    text = (f"pruned {result.events} events from {len(result.chains)} chains up to checkpoint {result.checkpoint_id} "
            f"({data['checkpoint_at']})" if result.checkpoint_id is not None
            else f"nothing to prune: no signed checkpoint at or before {before.isoformat()}")
    _emit(as_json, data, text)


@audit_cli.command("export")
@click.option("--since", type=_DATE, default=None, help="First moment included (ISO 8601).")
@click.option("--until", type=_DATE, default=None, help="End, excluded (ISO 8601).")
@click.option("--action", default=None, help="Action prefix, e.g. `login.`.")
@click.option("--actor", default=None, help="Exact actor, e.g. `admin:3`.")
@click.option("--client-id", default=None)
@click.option("--outcome", type=click.Choice(["ok", "denied", "error"]), default=None)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="JSON-lines file to write (`-` for stdout).")
@transactional
def audit_export(since: datetime | None, until: datetime | None, action: str | None, actor: str | None,
                 client_id: str | None, outcome: str | None, out: str) -> None:
    """Export events (oldest first) as JSON lines, with chain, seq and hashes so they can
    be checked against the chain later. The export is itself an audit event."""
    from admin.audit import AuditQuery

    query = AuditQuery(since=since, until=until, action=action, actor=actor, client_id=client_id, outcome=outcome)
    # Audited as the console's and the API's export (admin.audit.export, with the filters),
    # when it starts: an export cut short was still an export.
    lines = _admin().audit.export(_cli_actor(), query)
    count = 0
    with click.open_file(out, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line)
            count += 1
    if out != "-":
        click.echo(f"exported {count} events to {out}")


@audit_cli.command("alerts")
@click.option("--json", "as_json", is_flag=True)
def audit_alerts(as_json: bool) -> None:
    """Active alerts: failed-login bursts per account and per IP hash, verification volume
    per client, certificates rejected for revocation, failing back-channel logouts."""
    try:
        alerts = _admin().audit.alerts(_cli_actor())
    finally:
        db.session.rollback()
    _emit(as_json, [a.as_dict() for a in alerts],
          "\n".join(f"{a.kind}  {a.key}  {a.count} >= {a.threshold} in {a.window_seconds}s"
                    f"{'  ' + a.reason if a.reason else ''}" for a in alerts) or "(no alerts)")


@audit_cli.command("status")
@click.option("--json", "as_json", is_flag=True)
def audit_status(as_json: bool) -> None:
    """Chains, events kept, last checkpoint, last prune, last recorded verification."""
    try:
        status = _admin().audit.status(_cli_actor())
    finally:
        db.session.rollback()
    data = status.as_dict()
    _emit(as_json, data, "\n".join(f"{k}: {v}" for k, v in data.items()))
