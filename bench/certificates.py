"""Certificate validations/s (issue 4): ``CertificateValidator.validate`` of a 3-level
provincial path (root → issuing CA → leaf, ECDSA P-256) with the issuing CA's CRL holding
0 to 100,000 entries, to show that the cost does not grow with the CRL (parsed once per
CRL, then one set membership per look-up).

    .venv/bin/python bench/certificates.py [--sizes 0,1000,10000,100000] [--seconds 5] [--record]

Pure CPU, in process: no network, no database. See bench/README.md ("Certificate validation").
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# This file is bench/certificates.py: drop bench/ from the path so `import certificates`
# is the application package, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))

from certificates.revocation import RevocationChecker  # noqa: E402
from certificates.validation import CertificateValidator  # noqa: E402
from common.clock import SystemClock  # noqa: E402
from tests.support.pki import make_crl, make_large_crl, three_provinces  # noqa: E402

USCC = "91350100M000100Y43"


def measure(size: int, seconds: float) -> dict[str, float]:
    clock = SystemClock()
    province = three_provinces()[0]
    leaves = [province.issue(USCC) for _ in range(16)]
    started = time.perf_counter()
    crl = make_large_crl(province.intermediate, size) if size else make_crl(province.intermediate)
    build_s = time.perf_counter() - started
    ca = province.trusted(1, crl_der=crl)
    checker = RevocationChecker(clock, allow_fetch=False)
    validator = CertificateValidator(clock, checker)
    started = time.perf_counter()
    validator.validate(leaves[0].der, [], [ca], production=True)  # cold: parses the CRL
    cold_ms = (time.perf_counter() - started) * 1000
    latencies = []
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        validator.validate(leaves[n % len(leaves)].der, [], [ca], production=True)
        latencies.append(time.perf_counter() - t0)
        n += 1
    latencies.sort()
    total = sum(latencies)
    assert checker.parse_count == 1, "the CRL must be parsed once"
    return {
        "size": size, "crl_bytes": len(crl), "crl_build_s": build_s, "cold_ms": cold_ms,
        "per_s": n / total, "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6, "count": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,1000,10000,100000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    rows = [measure(int(s), args.seconds) for s in args.sizes.split(",")]
    base = rows[0]["per_s"]
    lines = [
        "| CRL entries | CRL size KiB | first validation (parses the CRL) ms | validations/s | p50 µs | p99 µs | rate / smallest |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['size']:,} | {r['crl_bytes'] / 1024:,.0f} | {r['cold_ms']:.1f} | {r['per_s']:,.0f} | "
                     f"{r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['per_s'] / base:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.record:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        text = (
            f"\n## Certificate validation (issue 4)\n\nProduced by `bench/certificates.py` on "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC:\n\n```\n.venv/bin/python bench/certificates.py "
            f"--sizes {args.sizes} --seconds {args.seconds:g} --record\n```\n\n"
            "`CertificateValidator.validate` of a root → issuing CA → leaf path (ECDSA P-256, SHA-256; "
            "16 leaves in turn), the issuing CA's CRL uploaded (no fetch), one thread; each validation "
            "parses the leaf, builds and verifies the path (2 ECDSA verifications), checks validity, "
            "constraints, key usage, the CRL and maps the identifier.\n\n"
            f"{table}\n\nMachine: {os.cpu_count()} cpus; Python {platform.python_version()}; "
            f"load average at start {load}.\n"
        )
        with (BENCH / "RESULTS.md").open("a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
