"""Loading the local registry from CSV, and synthetic registry records for demos,
tests and benchmarks.

CSV columns (header required): ``name,id_number[,phone][,status]`` with status
``alive`` (default) or ``deceased``. Rows are validated and normalised like user input;
invalid rows are counted and reported by line number, never stored. Re-importing the
same number updates it (idempotent).
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.crypto import KeyedHasher

from .idnumbers import InvalidIdNumberError, check_character, parse_id_number
from .models import RegistryRecord
from .names import InvalidNameError, normalize_name
from .registry import registry_name_hash, registry_phone_hash

BATCH = 5000


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    rejected: int = 0
    rejected_lines: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RegistryRow:
    name: str
    id_number: str
    phone: str | None = None
    deceased: bool = False


def _normalize_phone(value: str) -> str | None:
    digits = "".join(ch for ch in value if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits if len(digits) == 11 and digits.startswith("1") else None


def parse_csv(stream: TextIO, *, today: date, report: ImportReport) -> Iterator[RegistryRow]:
    reader = csv.DictReader(stream)
    missing = {"name", "id_number"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"CSV header lacks: {', '.join(sorted(missing))}")
    for line, record in enumerate(reader, start=2):
        try:
            name = normalize_name(record.get("name") or "")
            number = parse_id_number(record.get("id_number") or "", today=today).number
        except (InvalidNameError, InvalidIdNumberError) as exc:
            report.rejected += 1
            if len(report.rejected_lines) < 100:
                report.rejected_lines.append((line, getattr(exc, "reason", "invalid")))
            continue
        raw_phone = (record.get("phone") or "").strip()
        phone = _normalize_phone(raw_phone) if raw_phone else None
        if raw_phone and phone is None:
            report.rejected += 1
            if len(report.rejected_lines) < 100:
                report.rejected_lines.append((line, "phone"))
            continue
        status = (record.get("status") or "alive").strip().lower()
        if status not in ("alive", "deceased"):
            report.rejected += 1
            if len(report.rejected_lines) < 100:
                report.rejected_lines.append((line, "status"))
            continue
        yield RegistryRow(name, number, phone, status == "deceased")


class RegistryImporter:
    def __init__(self, session: Session, hasher: KeyedHasher, now: datetime) -> None:
        self._session = session
        self._hasher = hasher
        self._now = now

    def load(self, rows: Iterable[RegistryRow], report: ImportReport) -> ImportReport:
        """Upsert rows in batches. Flushes; the caller commits (once, or per batch via
        ``on_batch``)."""
        batch: list[RegistryRow] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                self._flush(batch, report)
                batch = []
        if batch:
            self._flush(batch, report)
        return report

    def _flush(self, batch: list[RegistryRow], report: ImportReport) -> None:
        by_index = {self._hasher.digest("id-number", r.id_number): r for r in batch}
        existing = {
            rec.id_index: rec
            for rec in self._session.scalars(select(RegistryRecord).where(RegistryRecord.id_index.in_(list(by_index))))
        }
        for index, row in by_index.items():
            name_hash = registry_name_hash(self._hasher, row.name, row.id_number)
            phone_hash = registry_phone_hash(self._hasher, row.phone, row.id_number) if row.phone else None
            rec = existing.get(index)
            if rec is None:
                self._session.add(
                    RegistryRecord(id_index=index, name_hash=name_hash, phone_hash=phone_hash,
                                   deceased=row.deceased, updated_at=self._now)
                )
                report.imported += 1
            else:
                rec.name_hash, rec.phone_hash, rec.deceased, rec.updated_at = (
                    name_hash, phone_hash, row.deceased, self._now)
                report.updated += 1
        self._session.flush()
        self._session.expunge_all()


# -- synthetic records ------------------------------------------------------------------

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文斌浩宇欣怡子轩梓涵一诺雨晨思远嘉豪佳琪晓东海燕春梅志强丹婷"
_REGIONS = ("110101", "110105", "310101", "310115", "440103", "440305", "330106", "320102", "510104", "420102",
            "610113", "370102", "210102", "500103", "650102", "540102", "450102", "810000", "820000", "830000")


def synthetic_rows(count: int, *, seed: int = 2026, today: date) -> Iterator[RegistryRow]:
    """Valid-looking, entirely invented records (random regions, dates, sequences, names,
    phone numbers); never a real person's data. Deterministic for a seed.

    Numbers are unique by construction, at any count: record i takes the i-th value of an
    affine permutation ``(a*i + b) mod M`` over all (region, birth date, sequence)
    combinations (``a`` coprime to ``M``), so no set of past numbers is kept in memory."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    start = date(1930, 1, 1).toordinal()
    days = today.toordinal() - start
    space = len(_REGIONS) * days * 1000
    if count > space:
        raise ValueError(f"at most {space} distinct synthetic numbers")
    a = rng.randrange(1, space)
    while math.gcd(a, space) != 1:
        a = rng.randrange(1, space)
    b = rng.randrange(space)
    for i in range(count):
        v = (a * i + b) % space
        v, seq = divmod(v, 1000)
        region_index, day = divmod(v, days)
        birth = date.fromordinal(start + day)
        first17 = f"{_REGIONS[region_index]}{birth:%Y%m%d}{seq:03d}"
        name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        yield RegistryRow(name, first17 + check_character(first17), phone, rng.random() < 0.002)


def write_csv(rows: Iterable[RegistryRow], stream: TextIO) -> int:
    writer = csv.writer(stream)
    writer.writerow(["name", "id_number", "phone", "status"])
    n = 0
    for row in rows:
        writer.writerow([row.name, row.id_number, row.phone or "", "deceased" if row.deceased else "alive"])
        n += 1
    return n
