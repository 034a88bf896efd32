"""Certificate validations/s (issues 4 and 10): ``CertificateValidator.validate`` of a 3-level
provincial path (root → issuing CA → leaf) with the issuing CA's CRL holding 0 to 100,000
entries, per signature algorithm: ECDSA P-256 (pyca/cryptography-made, as in issue 4) and SM2
with SM3 (made by the OpenSSL 3 CLI). Shows that the cost does not grow with the CRL (parsed
once per CRL, then one set membership per look-up) and what an SM2 path costs next to an
ECDSA one (issue 10 target: at most 3x).

    .venv/bin/python bench/certificates.py [--algorithms ecdsa,sm2] [--sizes 0,1000,10000,100000]
                                           [--seconds 5] [--rounds 1] [--record]

Pure CPU, in process: no network, no database. See bench/README.md ("Certificate validation").
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# This file is bench/certificates.py: drop bench/ from the path so `import certificates`
# is the application package, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402

from certificates import sm2  # noqa: E402
from certificates.mapping import DEFAULT_PROFILE  # noqa: E402
from certificates.revocation import RevocationChecker  # noqa: E402
from certificates.signatures import public_key_info  # noqa: E402
from certificates.trust import TrustedCa  # noqa: E402
from certificates.validation import CertificateValidator  # noqa: E402
from common.clock import SystemClock  # noqa: E402
from tests.support.gm_pki import GmPki, build_gm_pki  # noqa: E402
from tests.support.pki import make_crl, make_large_crl, three_provinces  # noqa: E402

USCC = "91350100M000100Y43"
LEAVES = 16
# CRL serials start here: far from the leaves' random 64-bit serials, so none is revoked.
FIRST_REVOKED = 10**6
ALGORITHMS = {
    "ecdsa": "ECDSA P-256 / SHA-256, made by pyca/cryptography (tests/support/pki.py), the issue 4 path",
    "sm2": "SM2 / SM3, made by the OpenSSL 3 CLI (tests/support/gm_pki.py), CRL by `openssl ca -gencrl`",
    "ecdsa-openssl": "ECDSA P-256 / SHA-256 made by the same OpenSSL CLI builder as the SM2 path "
                     "(same extensions, GM/T 0015 identifier, CRL by `openssl ca -gencrl`): a like-for-like control",
}


@dataclass
class Fixture:
    """One path to validate: 16 leaves under one issuing CA, and how to make that CA's CRL
    with a given number of entries and the ``TrustedCa`` that carries it."""

    algorithm: str
    leaves: list[bytes]
    issuer: x509.Certificate  # the issuing CA (signs the leaves and the CRL)
    make_crl: Callable[[int], bytes]
    trusted: Callable[[bytes], TrustedCa]


def ecdsa_fixture() -> Fixture:
    province = three_provinces()[0]
    leaves = [province.issue(USCC).der for _ in range(LEAVES)]

    def crl(size: int) -> bytes:
        return make_large_crl(province.intermediate, size) if size else make_crl(province.intermediate)

    return Fixture("ecdsa", leaves, province.intermediate.cert, crl, lambda der: province.trusted(1, crl_der=der))


def gm_fixture(pki: GmPki, algorithm: str) -> Fixture:
    """The OpenSSL-made CA ``pki.sm2`` (or ``pki.ecdsa``) with 16 leaves: its own company leaf
    and 15 more issued by ``openssl ca``; the CRL also comes from ``openssl ca -gencrl``
    (1 s for 100,000 entries), signed by the issuing CA's key with the GM/T 0009 signer ID."""
    key = "sm2" if algorithm == "sm2" else "ecdsa"
    ca = pki.cas[key]
    leaves = [pki.leaves[key].cert_der, *(leaf.cert_der for leaf in pki.issue_leaves(key, LEAVES - 1))]
    root = x509.load_der_x509_certificate(ca.root_der)
    intermediate = x509.load_der_x509_certificate(ca.intermediate_der)

    def crl(size: int) -> bytes:
        return pki.crl(key, list(range(FIRST_REVOKED, FIRST_REVOKED + size)))

    def trusted(der: bytes) -> TrustedCa:
        return TrustedCa(ca_id=2 if key == "sm2" else 3, name=ca.name, province=ca.province, roots=(root,),
                         intermediates=(intermediate,), profile=DEFAULT_PROFILE, crl_der=der)

    return Fixture(algorithm, leaves, intermediate, crl, trusted)


@dataclass
class Run:
    """One (algorithm, CRL size): its validator is kept across rounds, so the CRL is parsed once."""

    fixture: Fixture
    size: int
    crl: bytes
    ca: TrustedCa
    checker: RevocationChecker
    validator: CertificateValidator
    cold_ms: float
    latencies: list[float] = field(default_factory=list)
    round_rates: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0  # this thread's CPU time over all validations (not time waiting for a core)

    def measure(self, seconds: float) -> None:
        leaves, ca, validate = self.fixture.leaves, [self.ca], self.validator.validate
        deadline = time.perf_counter() + seconds
        n, spent = 0, 0.0
        cpu0 = time.thread_time()
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            validate(leaves[n % len(leaves)], [], ca, production=True)
            elapsed = time.perf_counter() - t0
            self.latencies.append(elapsed)
            spent += elapsed
            n += 1
        self.cpu_seconds += time.thread_time() - cpu0
        self.round_rates.append(n / spent)

    def row(self) -> dict[str, Any]:
        assert self.checker.parse_count == 1, "the CRL must be parsed once"
        lat = sorted(self.latencies)
        return {
            "algorithm": self.fixture.algorithm, "size": self.size, "crl_bytes": len(self.crl),
            "cold_ms": self.cold_ms, "per_s": len(lat) / sum(lat), "p50_us": lat[len(lat) // 2] * 1e6,
            "p99_us": lat[int(len(lat) * 0.99)] * 1e6, "count": len(lat), "rounds": self.round_rates,
            "cpu_us": self.cpu_seconds / len(lat) * 1e6,
        }


def prepare(fixture: Fixture, size: int) -> Run:
    crl = fixture.make_crl(size)
    ca = fixture.trusted(crl)
    clock = SystemClock()
    checker = RevocationChecker(clock, allow_fetch=False)
    validator = CertificateValidator(clock, checker)
    started = time.perf_counter()
    validator.validate(fixture.leaves[0], [], [ca], production=True)  # cold: parses the CRL
    cold_ms = (time.perf_counter() - started) * 1000
    return Run(fixture, size, crl, ca, checker, validator, cold_ms)


def per_call_us(fn: Callable[[], object], calls: int = 1000, batches: int = 7) -> float:
    """CPU µs of one call (this thread's CPU time, so time spent waiting for a core on a
    shared machine is not counted): the lowest of ``batches`` means."""
    means = []
    for _ in range(batches):
        t0 = time.thread_time()
        for _ in range(calls):
            fn()
        means.append((time.thread_time() - t0) / calls * 1e6)
    return min(means)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat): how much
    else ran during a measurement (this process alone keeps one core busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def signature_costs(fixtures: dict[str, Fixture]) -> dict[str, float]:
    """One leaf signature check alone, per algorithm: what ``verify_certificate`` calls for
    each link (``sm2.verify``; for ECDSA, cryptography's ``verify_directly_issued_by``)."""
    out: dict[str, float] = {}
    for name, fx in fixtures.items():
        leaf = x509.load_der_x509_certificate(fx.leaves[1])
        if name == "sm2":
            spki = public_key_info(fx.issuer).der
            out[name] = per_call_us(lambda: sm2.verify(spki, leaf.signature, leaf.tbs_certificate_bytes,  # noqa: B023
                                                       sm2.DEFAULT_SIGNER_ID))
            # The part of it done in Python and SM3: e = SM3(Z ‖ M) with Z from its cache.
            key = sm2._public_key(sm2.sm2_point(spki))
            out["sm2_digest"] = per_call_us(
                lambda: sm2._digest(key, leaf.tbs_certificate_bytes, sm2.DEFAULT_SIGNER_ID))  # noqa: B023
        else:
            out[name] = per_call_us(lambda: leaf.verify_directly_issued_by(fx.issuer))  # noqa: B023
    return out


def in_context(runs: list[Run], validations: int = 1000) -> dict[str, float]:
    """CPU µs per validation spent inside ``verify_certificate`` (the signature check of each
    link, with the Python around it) and, for SM2, inside ``certificates.sm2.verify``, timed
    during real validations (smallest CRL of each algorithm) by wrapping both for a while."""
    import certificates.validation as validation_module

    spent = {"link": 0.0, "sm2": 0.0}

    def timed(fn: Callable[..., Any], slot: str) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                spent[slot] += time.thread_time() - t0
        return wrapper

    out: dict[str, float] = {}
    originals = (validation_module.verify_certificate, sm2.verify)
    validation_module.verify_certificate = timed(originals[0], "link")
    sm2.verify = timed(originals[1], "sm2")
    try:
        for run in sorted(runs, key=lambda r: r.size):
            name = run.fixture.algorithm
            if f"{name}_link" in out:
                continue
            spent.update(link=0.0, sm2=0.0)
            t0 = time.thread_time()
            for i in range(validations):
                run.validator.validate(run.fixture.leaves[i % len(run.fixture.leaves)], [], [run.ca], production=True)
            out[f"{name}_total"] = (time.thread_time() - t0) / validations * 1e6
            out[f"{name}_link"] = spent["link"] / validations * 1e6
            if name == "sm2":
                out["sm2_verify"] = spent["sm2"] / validations * 1e6
    finally:
        validation_module.verify_certificate, sm2.verify = originals
    return out


def table(rows: list[dict[str, Any]]) -> str:
    smallest = {r["algorithm"]: r for r in sorted(rows, key=lambda r: -r["size"])}  # last write: smallest size
    base_rate = {name: r["per_s"] for name, r in smallest.items()}
    ecdsa_p50 = {r["size"]: r["p50_us"] for r in rows if r["algorithm"] == "ecdsa"}
    ecdsa_cpu = {r["size"]: r["cpu_us"] for r in rows if r["algorithm"] == "ecdsa"}
    lines = [
        "| algorithm | CRL entries | CRL size KiB | first validation (parses the CRL) ms | validations/s | p50 µs | "
        "p99 µs | CPU µs / validation | cost / ECDSA (p50) | cost / ECDSA (CPU) | rate / smallest CRL |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(rows, key=lambda r: (list(ALGORITHMS).index(r["algorithm"]), r["size"])):
        p50_ratio = f"{r['p50_us'] / ecdsa_p50[r['size']]:.2f}" if r["size"] in ecdsa_p50 else "-"
        cpu_ratio = f"{r['cpu_us'] / ecdsa_cpu[r['size']]:.2f}" if r["size"] in ecdsa_cpu else "-"
        lines.append(f"| {r['algorithm']} | {r['size']:,} | {r['crl_bytes'] / 1024:,.0f} | {r['cold_ms']:.1f} | "
                     f"{r['per_s']:,.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['cpu_us']:.0f} | {p50_ratio} | {cpu_ratio} | "
                     f"{r['per_s'] / base_rate[r['algorithm']]:.2f} |")
    return "\n".join(lines)


def breakdown(costs: dict[str, float], context: dict[str, float]) -> str:
    """Where a validation's time goes, in a few lines: one signature check alone, and during
    real validations the two link checks (leaf by the issuing CA, issuing CA by the root)
    against the rest of the validation."""
    parts = []
    for name in ALGORITHMS:
        if name not in costs:
            continue
        cpu, link = context[f"{name}_total"], context[f"{name}_link"]
        line = (f"- {name}: one signature check alone {costs[name]:.0f} µs; of a validation ({cpu:.0f} CPU µs, "
                f"smallest CRL, 1,000 validations timed) the 2 link checks take {link:.0f} µs ({100 * link / cpu:.0f}%)")
        if name == "sm2":
            line += (f", of which {context['sm2_verify']:.0f} µs in certificates.sm2.verify (one alone: "
                     f"SM3(Z ‖ TBSCertificate) {costs['sm2_digest']:.0f} µs, EVP_PKEY_verify "
                     f"{costs['sm2'] - costs['sm2_digest']:.0f} µs)")
        parts.append(f"{line}; the rest of the validation {cpu - link:.0f} µs")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default="ecdsa,sm2",
                        help="comma-separated: " + ", ".join(ALGORITHMS) + " (default ecdsa,sm2)")
    parser.add_argument("--sizes", default="0,1000,10000,100000")
    parser.add_argument("--seconds", type=float, default=5.0, help="per algorithm, CRL size and round")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every (algorithm, size) this many times, interleaved; latencies are pooled")
    parser.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = set(algorithms) - set(ALGORITHMS)
    if unknown:
        parser.error(f"unknown algorithms: {', '.join(sorted(unknown))}")
    sizes = [int(s) for s in args.sizes.split(",")]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())

    with tempfile.TemporaryDirectory(prefix="bench-gm-pki-") as tmp:
        pki = build_gm_pki(Path(tmp)) if set(algorithms) - {"ecdsa"} else None
        fixtures = {a: ecdsa_fixture() if a == "ecdsa" else gm_fixture(pki, a) for a in algorithms}  # type: ignore[arg-type]
        runs = [prepare(fixtures[a], size) for size in sizes for a in algorithms]
    # Interleaved (each size: every algorithm in turn), so a noisy spell on a shared machine
    # hits the algorithms being compared alike.
    busy0, all0 = machine_busy()
    for _ in range(args.rounds):
        for run in runs:
            run.measure(args.seconds)
    busy1, all1 = machine_busy()
    cpus = os.cpu_count() or 1
    busy = f"{100 * (busy1 - busy0) / max(all1 - all0, 1):.0f}% (this process alone: {100 / cpus:.0f}%)"
    rows = [run.row() for run in runs]
    costs = signature_costs(fixtures)
    context = in_context(runs)
    text = table(rows)
    where = breakdown(costs, context)
    print(text)
    print()
    print(where)
    print(f"machine busy during the measurement: {busy}; load average at start {load}")
    for r in rows:
        if len(r["rounds"]) > 1:
            print(f"  {r['algorithm']} {r['size']:,}: rounds " + ", ".join(f"{x:,.0f}" for x in r["rounds"]) + "/s")
    if args.record:
        record(args, algorithms, text, where, rows, f"{load}; machine busy during the measurement {busy}")


def record(args: argparse.Namespace, algorithms: list[str], text: str, where: str, rows: list[dict[str, Any]],
           machine: str) -> None:
    rounds = "".join(f"- {r['algorithm']} {r['size']:,}: " + ", ".join(f"{x:,.0f}" for x in r["rounds"])
                     + " validations/s\n" for r in rows if len(r["rounds"]) > 1)
    paths = "\n".join(f"- {a}: {ALGORITHMS[a]}" for a in algorithms)
    body = (
        f"\n## Certificate validation, SM2 beside ECDSA (issue 10)\n\nProduced by `bench/certificates.py` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC:\n\n```\n.venv/bin/python bench/certificates.py "
        f"--algorithms {','.join(algorithms)} --sizes {args.sizes} --seconds {args.seconds:g} "
        f"--rounds {args.rounds} --record\n```\n\n"
        "`CertificateValidator.validate` of a root → issuing CA → leaf path (16 leaves in turn), the issuing "
        "CA's CRL uploaded (no fetch), one thread; each validation parses the leaf, builds and verifies the "
        "path (2 signature checks), checks validity, constraints, key usage, the CRL and maps the identifier. "
        "Cost / ECDSA: this row's p50, or CPU time per validation (this thread's CPU time: waiting for a core "
        "on a shared machine not counted), over the `ecdsa` row's at the same CRL size; signature checks "
        "below are CPU time too.\n\n"
        f"{paths}\n\n{text}\n\nWhere the time goes (CPU time of this thread):\n\n{where}\n\n"
        + (f"Rate per round:\n\n{rounds}\n" if rounds else "")
        + f"Machine: {os.cpu_count()} cpus; Python {platform.python_version()}; load average at start {machine}.\n"
    )
    with (BENCH / "RESULTS.md").open("a", encoding="utf-8") as fh:
        fh.write(body)


if __name__ == "__main__":
    main()
