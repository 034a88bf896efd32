"""``flask realname ...``: the local real-name registry (import, synthetic data) and the
rotation of the data-encryption keys."""

from __future__ import annotations

from typing import Any

import click

from admin.cli import OperatorGroup
from common.cli import transactional
from common.db import db

from . import _admin, _cli_actor, _emit

realname_cli = OperatorGroup("realname", help="Real-name registry and verification data.")


@realname_cli.command("import-registry")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--json", "as_json", is_flag=True)
@transactional
def realname_import_registry(csv_file: Any, as_json: bool) -> None:
    """Load the local authoritative registry from CSV (name,id_number[,phone][,status]).
    Invalid rows are reported by line and skipped; re-imports update (idempotent)."""
    report = _admin().realname.import_csv(_cli_actor(), csv_file)
    data = {"imported": report.imported, "updated": report.updated, "rejected": report.rejected,
            "rejected_lines": [{"line": n, "reason": r} for n, r in report.rejected_lines]}
    text = f"imported {report.imported}, updated {report.updated}, rejected {report.rejected}" + "".join(
        f"\n  line {n}: {r}" for n, r in report.rejected_lines)
    _emit(as_json, data, text)


@realname_cli.command("generate-registry")
@click.option("--count", type=click.IntRange(1, 50_000_000), required=True)
@click.option("--out", "out", type=click.File("w", encoding="utf-8"), required=True)
@click.option("--seed", type=int, default=2026, help="Same seed, same records.")
@click.option("--json", "as_json", is_flag=True)
def realname_generate_registry(count: int, out: Any, seed: int, as_json: bool) -> None:
    """Write synthetic (invented, valid-looking) registry records as CSV for demos and
    benchmarks."""
    from datetime import date

    from realname.importer import synthetic_rows, write_csv

    n = write_csv(synthetic_rows(count, seed=seed, today=date.today()), out)  # noqa: DTZ011 - a calendar date
    _emit(as_json, {"written": n}, f"wrote {n} synthetic records")


@realname_cli.command("rotate-keys")
@click.option("--batch", type=click.IntRange(1, 100_000), default=1000, help="Rows per transaction.")
@click.option("--json", "as_json", is_flag=True)
def realname_rotate_keys(batch: int, as_json: bool) -> None:
    """Re-encrypt personal data (identities, TOTP secrets, account names and phones) and
    signing keys under the first key of YIWANG_DATA_KEYS, in short transactions, while
    the service runs. Put the new key first, keep the old one listed until this reports
    0 left, then remove the old key."""
    realname = _admin().realname
    total = 0
    try:
        # One short transaction per batch: the command commits what each step did.
        for changed in realname.rotate_data_keys(_cli_actor(), batch=batch):
            db.session.commit()
            total += changed
    except BaseException:
        db.session.rollback()
        raise
    _emit(as_json, {"reencrypted": total, "active_key": realname.active_key},
          f"re-encrypted {total} rows under key {realname.active_key}")
