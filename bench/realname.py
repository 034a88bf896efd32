"""Real-name registry look-ups (issue 3): verifications/s of the local adapter
(``LocalRegistry.verify``) against 100k and 10M synthetic registry rows, to show that
the look-up cost does not grow with the table (one B-tree probe on the keyed blind index).

    .venv/bin/python bench/realname.py [--rows 100000,10000000] [--seconds 10] [--threads 4]

For each size: a fresh PostgreSQL database built with the Alembic migrations, N rows from
``realname.importer.synthetic_rows`` hashed exactly as ``RegistryImporter`` does and
streamed with COPY, VACUUM ANALYZE; then, in rounds alternating the sizes, threads (one
SQLAlchemy session each) call ``LocalRegistry.verify`` for D seconds per size. Databases
are dropped at the end, also on failure.
See bench/README.md ("Real-name registry look-ups").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# This file is bench/realname.py: drop bench/ from the path so `import realname` is the
# application package, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from common.crypto import KeyedHasher  # noqa: E402
from realname.idnumbers import check_character  # noqa: E402
from realname.importer import synthetic_rows  # noqa: E402
from realname.registry import LocalRegistry, Outcome, registry_name_hash, registry_phone_hash  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLE = "realname_registry"
CHUNK = 5000
# Duplicate filter: synthetic_rows only de-duplicates numbers up to 2M rows (its `seen`
# set), and the unique index would reject a COPY with a repeated number. A 2^30-bit filter
# on crc32 of the number drops every repeat (and, harmlessly, ~0.5% of unique numbers
# whose crc collides), in 128 MiB whatever the row count.
FILTER_BITS = 30
# Not one of the regions synthetic_rows draws from, so these numbers are never in the table
# (checked against the table before measuring).
ABSENT_REGION = "130102"
# Rough bytes per row on disk (heap + both indexes + WAL in flight), to refuse a size the
# disk cannot hold.
BYTES_PER_ROW_ESTIMATE = 700
DISK_MARGIN = 5 * 1024**3
SHARED_NOTE = ("Measured on a shared machine: other engineers' test suites were running on the same 2 cores, so "
               "absolute rates are noisy and low; the point is the ratio between table sizes.")


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def parse_count(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    for suffix, factor in (("k", 1000), ("m", 1_000_000)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


def human(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# -- loading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    name: str
    id_number: str
    deceased: bool


def _producer(shard: int, seed: int, key: bytes, today: date, stride: int, stamp: str,
              out: Any, stop: Any) -> None:
    """One generator process: an endless synthetic_rows stream (its own seed), hashed as
    RegistryImporter._flush does, sent in chunks of COPY text lines."""
    with contextlib.suppress(KeyboardInterrupt):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
        out.cancel_join_thread()  # never hang at exit on chunks nobody will read
        hasher = KeyedHasher(key)
        rows = synthetic_rows(2**62, seed=seed * 100 + shard, today=today)
        position = 0
        while not stop.is_set():
            lines: list[str] = []
            keys: list[int] = []
            samples: list[tuple[int, Sample]] = []
            for i, row in enumerate(rows):
                index = hasher.digest("id-number", row.id_number)
                name_hash = registry_name_hash(hasher, row.name, row.id_number)
                phone_hash = registry_phone_hash(hasher, row.phone, row.id_number) if row.phone else "\\N"
                lines.append(f"{index}\t{name_hash}\t{phone_hash}\t{'t' if row.deceased else 'f'}\t{stamp}\n")
                keys.append(zlib.crc32(row.id_number.encode()) & ((1 << FILTER_BITS) - 1))
                if position % stride == 0:
                    samples.append((i, Sample(row.name, row.id_number, row.deceased)))
                position += 1
                if len(lines) >= CHUNK:
                    break
            while not stop.is_set():
                try:
                    out.put((lines, keys, samples), timeout=0.5)
                    break
                except queue.Full:
                    continue


@dataclass
class LoadReport:
    rows: int = 0
    dropped_repeats: int = 0
    copy_seconds: float = 0.0
    index_seconds: float = 0.0
    vacuum_seconds: float = 0.0
    index_during_load: bool = False
    samples: list[Sample] = field(default_factory=list)


def load_rows(url: str, count: int, key: bytes, args: argparse.Namespace) -> LoadReport:
    report = LoadReport(index_during_load=args.index_during_load)
    stride = max(1, count // args.samples)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S+00")
    ctx = mp.get_context("fork")  # before any connection or thread exists in this process
    stop = ctx.Event()
    queues = [ctx.Queue(maxsize=4) for _ in range(args.workers)]
    workers = [
        ctx.Process(target=_producer, daemon=True,
                    args=(s, args.seed, key, date.today(), stride, stamp, queues[s], stop))  # noqa: DTZ011
        for s in range(args.workers)
    ]
    for w in workers:
        w.start()
    seen = bytearray(1 << (FILTER_BITS - 3))
    try:
        with psycopg.connect(url) as conn:
            unique = conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'u'", (TABLE,)).fetchall()
            if not args.index_during_load:
                # A bulk load builds the B-tree once after the COPY (sorted, ~10x faster
                # than 10M random insertions); same constraint, same name, re-added below.
                for name, _ in unique:
                    conn.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
            t0 = time.perf_counter()
            last_log = t0
            with conn.cursor().copy(
                f"COPY {TABLE} (id_index, name_hash, phone_hash, deceased, updated_at) FROM STDIN"
            ) as copy:
                turn = 0
                while report.rows < count:
                    lines, keys, samples = queues[turn % len(queues)].get(timeout=120)
                    turn += 1
                    keep: list[int] = []
                    for i, k in enumerate(keys):
                        byte, bit = k >> 3, 1 << (k & 7)
                        if seen[byte] & bit:
                            report.dropped_repeats += 1
                            continue
                        seen[byte] |= bit
                        keep.append(i)
                    keep = keep[: count - report.rows]
                    if len(keep) == len(lines):
                        copy.write("".join(lines))
                    else:
                        copy.write("".join(lines[i] for i in keep))
                    kept = set(keep) if len(keep) != len(lines) else None
                    report.samples.extend(s for i, s in samples if kept is None or i in kept)
                    report.rows += len(keep)
                    now = time.perf_counter()
                    if now - last_log > 15:
                        log(f"  {report.rows:,} rows ({report.rows / (now - t0):,.0f}/s)")
                        last_log = now
            stop.set()
            conn.commit()
            report.copy_seconds = time.perf_counter() - t0
            log(f"  COPY {report.rows:,} rows in {report.copy_seconds:.1f}s "
                f"({report.rows / report.copy_seconds:,.0f} rows/s; {report.dropped_repeats:,} repeated numbers skipped)")
            if not args.index_during_load:
                t0 = time.perf_counter()
                conn.execute("SET maintenance_work_mem = '1GB'")
                for name, definition in unique:
                    conn.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
                conn.commit()
                report.index_seconds = time.perf_counter() - t0
                log(f"  unique index built in {report.index_seconds:.1f}s")
        with psycopg.connect(url, autocommit=True) as conn:
            t0 = time.perf_counter()
            # VACUUM as well as ANALYZE: sets hint bits and the visibility map now, so the
            # first look-ups do not pay for writing them.
            conn.execute(f"VACUUM (ANALYZE) {TABLE}")
            report.vacuum_seconds = time.perf_counter() - t0
            log(f"  VACUUM ANALYZE in {report.vacuum_seconds:.1f}s")
    finally:
        # Producers see the event within 0.5 s (their put() has a timeout) and exit without
        # flushing (cancel_join_thread); whatever they left in the pipes is discarded.
        stop.set()
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.terminate()
                w.join(timeout=5)
        for q in queues:
            q.close()
    return report


# -- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    name: str
    id_number: str
    expected: Outcome


def build_probes(samples: list[Sample], seed: int) -> list[Probe]:
    """Registered people (MATCH, or DECEASED), the right number with a wrong name
    (MISMATCH, one in ten), numbers absent from the table (NOT_FOUND, one in ten)."""
    rng = random.Random(seed)
    probes = [Probe(s.name, s.id_number, Outcome.DECEASED if s.deceased else Outcome.MATCH) for s in samples]
    for s in rng.sample(samples, max(1, len(samples) // 10)):
        probes.append(Probe(s.name + "某", s.id_number, Outcome.MISMATCH))
    for _ in range(max(1, len(samples) // 10)):
        first17 = f"{ABSENT_REGION}{rng.randrange(1950, 2005)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
        probes.append(Probe("王某某", first17 + check_character(first17), Outcome.NOT_FOUND))
    rng.shuffle(probes)
    return probes


def check_absent(url: str, hasher: KeyedHasher, probes: list[Probe]) -> None:
    indexes = [hasher.digest("id-number", p.id_number) for p in probes if p.expected is Outcome.NOT_FOUND]
    with psycopg.connect(url) as conn:
        (present,) = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE id_index = ANY(%s)",  # noqa: S608
                                  (indexes,)).fetchone()
    if present:
        raise SystemExit(f"{present} 'absent' numbers are in the table: the not-found probes are wrong")


def run_threads(url: str, hasher: KeyedHasher, probes: list[Probe], threads: int, seconds: float,
                seed: int) -> dict[str, Any]:
    """Each thread: its own Session; per verification one transaction (verify, then
    rollback, as a request would end it). Latency is verify() alone."""
    engine = create_engine(url, pool_size=threads, max_overflow=0)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    counts = [0] * threads
    wrong: list[str] = []
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]
    errors: list[BaseException] = []

    def worker(tid: int) -> None:
        rng = random.Random(seed * 1000 + tid)
        lat = latencies[tid]
        try:
            with Session(engine) as session:
                registry = LocalRegistry(session, hasher)
                session.connection()  # connect before the clock starts
                session.rollback()
                barrier.wait()
                n = 0
                clock = time.perf_counter
                while True:
                    p = probes[rng.randrange(len(probes))]
                    t0 = clock()
                    outcome = registry.verify(p.name, p.id_number)
                    t1 = clock()
                    session.rollback()
                    if t1 > deadline[0]:
                        break
                    lat.append(t1 - t0)
                    n += 1
                    if outcome is not p.expected and len(wrong) < 10:
                        wrong.append(f"{p.expected.value} expected, {outcome.value} returned")
                counts[tid] = n
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.abort()

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for t in pool:
        t.start()
    cpu0 = os.times()
    deadline[0] = time.perf_counter() + 3600
    barrier.wait()
    start = time.perf_counter()
    deadline[0] = start + seconds
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    cpu1 = os.times()
    engine.dispose()
    if errors:
        raise errors[0]
    if wrong:
        raise SystemExit(f"LocalRegistry.verify gave wrong answers: {wrong}")
    merged = sorted(x for lat in latencies for x in lat)
    total = sum(counts)
    return {
        "verifications": total,
        "seconds": elapsed,
        "per_second": total / elapsed,
        "p50_ms": quantile(merged, 0.50) * 1000,
        "p99_ms": quantile(merged, 0.99) * 1000,
        "client_cpu": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed,
        "latencies": merged,
    }


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def raw_sql(url: str, hasher: KeyedHasher, probes: list[Probe], seconds: float) -> dict[str, Any]:
    """The same SELECT as LocalRegistry._row, prepared, one connection, hashes computed in
    advance: the database's share of a look-up without the ORM and the HMACs."""
    indexes = [hasher.digest("id-number", p.id_number) for p in probes]
    sql = (f"SELECT id, id_index, name_hash, phone_hash, deceased, updated_at FROM {TABLE} "  # noqa: S608
           "WHERE id_index = %s")
    lat: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        rng = random.Random(7)
        clock = time.perf_counter
        end = clock() + seconds
        while True:
            t0 = clock()
            cur.execute(sql, (indexes[rng.randrange(len(indexes))],), prepare=True)
            cur.fetchall()
            t1 = clock()
            if t1 > end:
                break
            lat.append(t1 - t0)
    return {"per_second": len(lat) / seconds, "latencies": lat}


def explain(url: str, hasher: KeyedHasher, probes: list[Probe], n: int = 200) -> dict[str, Any]:
    """Plan and buffers per look-up (EXPLAIN ANALYZE BUFFERS), B-tree height (pageinspect),
    sizes."""
    found = [p for p in probes if p.expected is not Outcome.NOT_FOUND][:n]
    with psycopg.connect(url, autocommit=True) as conn:
        buffers, exec_ms, nodes = [], [], set()
        for p in found:
            (plan,) = conn.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM {TABLE} WHERE id_index = %s",  # noqa: S608
                (hasher.digest("id-number", p.id_number),)).fetchone()
            top = plan[0]
            nodes.add(f"{top['Plan']['Node Type']} using {top['Plan'].get('Index Name', '-')}")
            buffers.append(top["Plan"]["Shared Hit Blocks"] + top["Plan"]["Shared Read Blocks"])
            exec_ms.append(top["Execution Time"])
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        index = conn.execute(
            "SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = %s::regclass AND a.attname = 'id_index'", (TABLE,)).fetchone()
        level = conn.execute("SELECT level FROM bt_metap(%s)", (index[0],)).fetchone()[0] if index else None
        sizes = conn.execute(
            "SELECT pg_total_relation_size(%s), pg_relation_size(%s), pg_indexes_size(%s), "
            "pg_relation_size(%s)", (TABLE, TABLE, TABLE, index[0] if index else TABLE)).fetchone()
        indexes = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", (TABLE,))]
    exec_ms.sort()
    return {
        "plans": sorted(nodes),
        "buffers_per_lookup": sum(buffers) / len(buffers),
        "exec_ms_p50": quantile(exec_ms, 0.5),
        "index": index[0] if index else None,
        "btree_levels": None if level is None else level + 1,  # bt_metap level 0 = leaf only
        "total_bytes": sizes[0],
        "heap_bytes": sizes[1],
        "indexes_bytes": sizes[2],
        "id_index_bytes": sizes[3],
        "indexes": indexes,
    }


def statio(url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT heap_blks_hit, heap_blks_read, idx_blks_hit, idx_blks_read "
            "FROM pg_statio_user_tables WHERE relname = %s", (TABLE,)).fetchone()
    return tuple(int(x or 0) for x in row)  # type: ignore[return-value]


# -- one size -------------------------------------------------------------------------------


def migrate(url: str) -> None:
    """Alembic migrations, as production builds the schema (cf. tests/helpers.py)."""
    from flask_migrate import upgrade

    from common.db import db
    from config.app import create_app
    from config.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database_url=url, instance_path=Path(tmp)))  # type: ignore[call-arg]
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            db.engine.dispose()


@dataclass
class SizeRun:
    rows: int
    database: str
    url: str
    sa_url: str
    hasher: KeyedHasher
    probes: list[Probe]
    load: LoadReport
    explain: dict[str, Any] | None = None
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    raw_rates: list[float] = field(default_factory=list)
    raw_latencies: list[float] = field(default_factory=list)
    verifications: int = 0
    client_cpu: list[float] = field(default_factory=list)
    hits: int = 0
    reads: int = 0


def prepare_size(count: int, args: argparse.Namespace, created: list[str]) -> SizeRun:
    db_name = f"yiwang_bench_realname_{human(count).lower()}_{os.getpid()}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    url = f"{base}/{db_name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    created.append(db_name)
    log(f"{human(count)} rows: database {db_name}")
    run = SizeRun(count, db_name, url, url.replace("postgresql://", "postgresql+psycopg://", 1),
                  KeyedHasher(b"\0" * 32), [], LoadReport())
    migrate(run.sa_url)
    key = os.urandom(32)  # a throwaway index key: the rows and the look-ups share it
    run.hasher = KeyedHasher(key)
    run.load = load_rows(url, count, key, args)
    run.probes = build_probes(run.load.samples, args.seed)
    check_absent(url, run.hasher, run.probes)
    log(f"  {len(run.probes):,} probes ({len(run.load.samples):,} registered people, "
        f"{sum(p.expected is Outcome.MISMATCH for p in run.probes):,} wrong names, "
        f"{sum(p.expected is Outcome.NOT_FOUND for p in run.probes):,} absent numbers)")
    return run


def measure_slice(run: SizeRun, args: argparse.Namespace, round_no: int) -> None:
    """One round for one size: warm-up (the other size's pages may have evicted this
    one's from shared_buffers), then the measured window, then the bare query."""
    if args.warmup > 0:
        run_threads(run.sa_url, run.hasher, run.probes, args.threads, args.warmup, args.seed + 100 + round_no)
    if run.explain is None:
        run.explain = explain(run.url, run.hasher, run.probes)  # after a warm-up: steady-state server time
        ex = run.explain
        log(f"  {human(run.rows)}: plan {', '.join(ex['plans'])}; B-tree levels {ex['btree_levels']}; "
            f"{ex['buffers_per_lookup']:.1f} buffers per look-up; table+indexes {ex['total_bytes'] / 2**20:,.0f} MiB")
    time.sleep(1)  # let the previous backends exit and flush their I/O statistics
    before = statio(run.url)
    result = run_threads(run.sa_url, run.hasher, run.probes, args.threads, args.seconds, args.seed + round_no)
    time.sleep(1)
    after = statio(run.url)
    run.hits += (after[0] - before[0]) + (after[2] - before[2])
    run.reads += (after[1] - before[1]) + (after[3] - before[3])
    run.rates.append(result["per_second"])
    run.latencies.extend(result["latencies"])
    run.verifications += result["verifications"]
    run.client_cpu.append(result["client_cpu"])
    raw = raw_sql(run.url, run.hasher, run.probes, min(args.seconds, 5))
    run.raw_rates.append(raw["per_second"])
    run.raw_latencies.extend(raw["latencies"])
    log(f"  round {round_no + 1}, {human(run.rows)}: {result['per_second']:,.0f} verifications/s, "
        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms; raw SQL {raw['per_second']:,.0f}/s")


def summarize(run: SizeRun) -> dict[str, Any]:
    run.latencies.sort()
    run.raw_latencies.sort()
    return {
        "rows": run.rows,
        "database": run.database,
        "load": run.load,
        "explain": run.explain,
        "result": {
            "per_second": statistics.median(run.rates),
            "rounds": [round(r) for r in run.rates],
            "p50_ms": quantile(run.latencies, 0.50) * 1000,
            "p99_ms": quantile(run.latencies, 0.99) * 1000,
            "verifications": run.verifications,
            "client_cpu": statistics.mean(run.client_cpu),
        },
        "raw": {
            "per_second": statistics.median(run.raw_rates),
            "rounds": [round(r) for r in run.raw_rates],
            "p50_us": quantile(run.raw_latencies, 0.50) * 1e6,
            "p99_us": quantile(run.raw_latencies, 0.99) * 1e6,
        },
        "buffer_hit_ratio": run.hits / (run.hits + run.reads) if run.hits + run.reads else float("nan"),
        "buffer_reads": run.reads,
    }


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    log(f"dropped database {name}")


def free_bytes() -> tuple[int, str]:
    with psycopg.connect(PG_ADMIN_URL) as conn:
        (data_dir,) = conn.execute("SHOW data_directory").fetchone()
    return shutil.disk_usage(data_dir).free, data_dir


# -- report -----------------------------------------------------------------------------


def machine_facts() -> dict[str, str]:
    def read(path: str, prefix: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
        return "?"

    with psycopg.connect(PG_ADMIN_URL) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        shared = conn.execute("SHOW shared_buffers").fetchone()[0]
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    mem_kb = read("/proc/meminfo", "MemTotal").split()[0] if read("/proc/meminfo", "MemTotal") != "?" else "0"
    return {
        "cpus": str(os.cpu_count()),
        "cpu model": read("/proc/cpuinfo", "model name"),
        "memory": f"{int(mem_kb) // 1024} MiB",
        "kernel": platform.release(),
        "PostgreSQL": f"{pg} (shared_buffers {shared})",
        "Python": platform.python_version(),
        "load average at start": load,
    }


def table(results: list[dict[str, Any]]) -> list[str]:
    head = ["rows", "generate + hash + COPY s", "index build s", "VACUUM ANALYZE s", "table + indexes MiB", "id_index B-tree MiB",
            "B-tree levels", "buffers / look-up", "verifications/s", "p50 ms", "p99 ms", "raw SQL look-ups/s (1 conn)",
            "raw SQL p50 µs", "shared-buffer hit %"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        ld, ex, res, raw = r["load"], r["explain"], r["result"], r["raw"]
        lines.append("| " + " | ".join([
            f"{r['rows']:,}", f"{ld.copy_seconds:.1f}", "during COPY" if ld.index_during_load else f"{ld.index_seconds:.1f}",
            f"{ld.vacuum_seconds:.1f}", f"{ex['total_bytes'] / 2**20:,.0f}", f"{ex['id_index_bytes'] / 2**20:,.1f}",
            str(ex["btree_levels"]), f"{ex['buffers_per_lookup']:.1f}", f"{res['per_second']:,.0f}",
            f"{res['p50_ms']:.2f}", f"{res['p99_ms']:.2f}", f"{raw['per_second']:,.0f}", f"{raw['p50_us']:.0f}",
            f"{r['buffer_hit_ratio'] * 100:.1f}",
        ]) + " |")
    if len(results) >= 2:
        small, big = results[0], results[-1]

        def ratio(a: float, b: float) -> str:
            return f"{a / b:.2f}" if b else "-"

        def paired(kind: str) -> str:
            # Rounds of the two sizes ran next to each other (alternation): the median of
            # the per-round ratios cancels the machine's load drifting between rounds.
            a, b = small[kind]["rounds"], big[kind]["rounds"]
            return f"{statistics.median(y / x for x, y in zip(a, b, strict=True)):.2f}"

        lines.append(
            f"| ratio {human(big['rows'])} / {human(small['rows'])} | | | | "
            f"{ratio(big['explain']['total_bytes'], small['explain']['total_bytes'])} | "
            f"{ratio(big['explain']['id_index_bytes'], small['explain']['id_index_bytes'])} | | "
            f"{ratio(big['explain']['buffers_per_lookup'], small['explain']['buffers_per_lookup'])} | "
            f"**{paired('result')}** | "
            f"{ratio(big['result']['p50_ms'], small['result']['p50_ms'])} | "
            f"{ratio(big['result']['p99_ms'], small['result']['p99_ms'])} | "
            f"**{paired('raw')}** | "
            f"{ratio(big['raw']['p50_us'], small['raw']['p50_us'])} | |"
        )
    return lines


def section(results: list[dict[str, Any]], skipped: list[str], args: argparse.Namespace, facts: dict[str, str],
            command: str, started: datetime) -> str:
    out = [
        "## Real-name registry look-ups (issue 3)",
        "",
        f"**{args.note}**",
        "",
        f"Produced by `bench/realname.py` on {started:%Y-%m-%d %H:%M} UTC:",
        "",
        "```",
        command,
        "```",
        "",
        f"`LocalRegistry.verify` (the `local` adapter, one SQLAlchemy session per thread) with {args.threads} threads, "
        f"{args.rounds} rounds of {args.seconds:g} s per size, the sizes measured in alternation, each slice after a "
        f"{args.warmup:g} s warm-up; verifications/s and raw SQL look-ups/s are the median round (every round is "
        "listed below), p50/p99 are over all rounds; in the ratio row those two rates are the median of the "
        "per-round ratios (the two sizes ran back to back in each round). Probes are drawn at random from "
        f"{len(results[0]['load'].samples) if results else 0:,} registered people spread evenly over the table "
        "(+10% right number with a wrong name, +10% absent numbers); every answer is checked. Latency is the "
        "verify call (two HMACs + one indexed query through the ORM); each verification is its own transaction. "
        "Raw SQL: the same query, prepared, one connection, pre-computed blind index. Buffers per look-up: "
        "EXPLAIN (ANALYZE, BUFFERS) over 200 registered numbers. Shared-buffer hit %: pg_statio_user_tables "
        "during the measured window (a miss is a read from the OS page cache or disk). Rows are streamed with "
        "COPY " + ("with the unique index in place (as the ORM importer would maintain it)."
                   if args.index_during_load else
                   "with the unique constraint dropped and re-added after (same name, same definition: one "
                   "sorted index build, as a bulk load does)."),
        "",
        *table(results),
        "",
    ]
    for r in results:
        ld, ex = r["load"], r["explain"]
        out.append(
            f"- {r['rows']:,} rows: load {ld.copy_seconds + ld.index_seconds + ld.vacuum_seconds:.0f} s in all "
            f"({r['rows'] / ld.copy_seconds:,.0f} rows/s through COPY, {args.workers} generator/hasher processes, "
            f"{ld.dropped_repeats:,} repeated synthetic numbers skipped); heap {ex['heap_bytes'] / 2**20:,.0f} MiB, "
            f"indexes {ex['indexes_bytes'] / 2**20:,.0f} MiB; plan: {', '.join(ex['plans'])}; "
            f"server execution p50 {ex['exec_ms_p50'] * 1000:.0f} µs (EXPLAIN ANALYZE, after the warm-up); "
            f"{r['buffer_reads'] / max(1, r['result']['verifications']):.2f} pages read from outside shared_buffers "
            f"per verification; client CPU {r['result']['client_cpu'] * 100:.0f}% "
            f"of a core; {r['result']['verifications']:,} verifications; rounds: "
            f"{', '.join(f'{x:,}' for x in r['result']['rounds'])} verifications/s, raw SQL "
            f"{', '.join(f'{x:,}' for x in r['raw']['rounds'])} look-ups/s."
        )
    out += [f"- skipped: {s}" for s in skipped]
    out += ["", "Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + ".", ""]
    return "\n".join(out)


def record(path: Path, text: str) -> None:
    """Append the section to RESULTS.md, replacing an earlier one with the same heading."""
    heading = text.splitlines()[0]
    old = path.read_text() if path.exists() else ""
    if heading in old:
        before, rest = old.split(heading, 1)
        after = ""
        for i, line in enumerate(rest.splitlines(keepends=True)[1:], start=1):
            if line.startswith("## "):
                after = "".join(rest.splitlines(keepends=True)[i:])
                break
        old = before.rstrip("\n") + "\n\n" + after if after else before
    path.write_text(old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default="100000,10000000", help="comma-separated table sizes (100k, 10M accepted)")
    p.add_argument("--seconds", type=float, default=10, help="measured seconds per size and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the sizes are measured in alternation")
    p.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before, same probes")
    p.add_argument("--threads", type=int, default=4, help="threads, each with its own SQLAlchemy session")
    p.add_argument("--samples", type=int, default=10_000, help="registered people kept aside as probes")
    p.add_argument("--workers", type=int, default=2, help="processes generating and hashing rows")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--index-during-load", action="store_true",
                   help="keep the unique index during COPY (as the ORM importer does) instead of building it after")
    p.add_argument("--note", default=SHARED_NOTE, help="a line at the top of the RESULTS.md section")
    p.add_argument("--record", action="store_true", help="append/replace the section in bench/RESULTS.md")
    p.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    p.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = p.parse_args()
    sizes = [parse_count(x) for x in args.rows.split(",") if x.strip()]
    started = datetime.now(UTC)
    command = ".venv/bin/python bench/realname.py " + shlex.join(sys.argv[1:])

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    facts = machine_facts()
    created: list[str] = []
    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    try:
        runs: list[SizeRun] = []
        for count in sizes:
            free, data_dir = free_bytes()  # databases already loaded are counted in
            need = count * BYTES_PER_ROW_ESTIMATE
            if free - need < DISK_MARGIN:
                msg = (f"{count:,} rows: needs ~{need / 2**30:.1f} GiB, {data_dir} has {free / 2**30:.1f} GiB free "
                       f"(keeping {DISK_MARGIN / 2**30:.0f} GiB spare)")
                log("SKIP " + msg)
                skipped.append(msg)
                continue
            runs.append(prepare_size(count, args, created))
        # Sizes measured in alternation (ABBA...), so a change in the machine's load
        # during the run weighs on every size alike; the median round is reported.
        for round_no in range(args.rounds):
            for run in runs if round_no % 2 == 0 else runs[::-1]:
                measure_slice(run, args, round_no)
        results = [summarize(run) for run in runs]
    finally:
        for name in created:
            with contextlib.suppress(Exception):
                drop_database(name)
    text = section(results, skipped, args, facts, command, started)
    print()
    print("\n".join(table(results)))
    if args.json:
        args.json.write_text(json.dumps([
            {**{k: v for k, v in r.items() if k != "load"},
             "load": {k: v for k, v in vars(r["load"]).items() if k != "samples"}} for r in results
        ], indent=2, default=str))
    if args.record:
        record(args.results, text)
        log(f"section written to {args.results}")
    else:
        print()
        print(text)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
