"""Certificate login latency (issue 10): ``POST /login/certificate`` on Yiwang under gunicorn +
PostgreSQL + Redis at 16 concurrent logins, for an SM2 leaf and an ECDSA (or RSA) leaf of
the OpenSSL-made test PKI (tests/support/gm_pki.py). Target: p99 < 100 ms.

    .venv/bin/python bench/certificate_login.py [--algorithms sm2,ecdsa] [--duration 10]
        [--connections 16] [--logins 3000] [--crl-entries 0] [--record] [--profile [cpu|wall]]

The server is started by bench/run.py's ``start_yiwang`` (fresh database and Redis prefix,
dropped at the end); the CAs and their CRLs are registered through the ``flask certificates``
CLI before gunicorn starts. Each login is prepared as a browser does it (GET the page for a
challenge and the CSRF token, sign the challenge with the leaf's key) and its POST is sent
once by wrk. See bench/README.md ("Certificate login").
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# bench/certificates.py would shadow the application package: the project root comes
# first, bench/ (for run.py) last.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() not in (BENCH, ROOT)), str(BENCH)]

import requests  # noqa: E402
import run  # noqa: E402  (bench/run.py)
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402

from certificates import sm2  # noqa: E402
from certificates.proof import signed_bytes  # noqa: E402
from certificates.uscc import check_uscc, org_code_check_character, uscc_check_character  # noqa: E402
from tests.support.gm_pki import GmLeaf, GmPki, build_gm_pki  # noqa: E402

# gm_pki CA keys whose company leaves log in; each gets LEAVES distinct certificates.
ALGORITHMS = ("sm2", "ecdsa", "rsa")
LEAVES = 16
TARGET_P99_MS = 100.0
FIRST_REVOKED = 10**6  # CRL serials: none is a leaf's (random 64-bit serials)
_CHALLENGE = re.compile(r'<pre id="challenge">([^<]+)</pre>')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class Signer:
    """The holder's side: the leaf's private key signing ``signed_bytes(challenge)`` the way
    each kind of UKey middleware does (SM2: SM3 + GM/T 0009 default ID, DER; ECDSA: SHA-256
    DER; RSA: PKCS#1 v1.5 SHA-256). Client work, not what is measured."""

    def __init__(self, leaf: GmLeaf) -> None:
        self.leaf = leaf
        self.certificate = leaf.cert_pem.decode()
        if leaf.key_algorithm == "sm2":
            key = sm2.load_private_key(leaf.key_pem)
            self._sign: Callable[[bytes], bytes] = lambda data: sm2.sign(key, data)
        else:
            other = serialization.load_pem_private_key(leaf.key_pem, None)
            if isinstance(other, ec.EllipticCurvePrivateKey):
                curve_key = other
                self._sign = lambda data: curve_key.sign(data, ec.ECDSA(hashes.SHA256()))
            elif isinstance(other, rsa.RSAPrivateKey):
                rsa_key = other
                self._sign = lambda data: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            else:
                raise ValueError(f"{leaf.name}: no signer for {type(other).__name__}")

    def sign(self, challenge: str) -> str:
        return base64.b64encode(self._sign(signed_bytes(challenge))).decode()


def companies(count: int) -> list[tuple[str, str]]:
    """``count`` synthetic companies with valid USCCs (GB 32100-2015 check character over a
    GB 11714 organisation code with its own check character), Fuzhou region."""
    out = []
    for i in range(count):
        body = f"{20000000 + i:08d}"
        first17 = "91350100" + body + org_code_check_character(body)
        uscc = first17 + uscc_check_character(first17)
        assert check_uscc(uscc), uscc
        out.append((f"Bench Company {i} Co., Ltd.", uscc))
    return out


def prepare_login(base: str, signer: Signer) -> str:
    """One login as a fresh browser: GET the page (a challenge bound to this browser's
    session, the CSRF token), sign, and the POST as a request line for scenario.lua."""
    browser = requests.Session()
    page = browser.get(base + "/login/certificate", timeout=30)
    page.raise_for_status()
    found = _CHALLENGE.search(page.text)
    if found is None:
        raise RuntimeError(f"no challenge on the certificate login page: {page.text[:300]}")
    challenge = found.group(1)
    form = dict(_HIDDEN.findall(page.text))
    body = urlencode({
        "csrf_token": form["csrf_token"], "interaction": "", "challenge": challenge,
        "certificate": signer.certificate, "chain": "", "signature": signer.sign(challenge),
    })
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    return run.request_line("POST", "/login/certificate", body, {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
    })


def check_login(base: str, line: str) -> None:
    """Send one prepared login outside wrk: it must log in (303 to the company page)."""
    method, path, body, *headers = line.split("\t")
    resp = requests.request(method, base + path, data=body, allow_redirects=False, timeout=30,
                            headers=dict(h.split(": ", 1) for h in headers))
    if resp.status_code != 303 or not resp.headers.get("Location", "").endswith("/company"):
        raise RuntimeError(f"certificate login answered {resp.status_code}: {resp.text[-600:]}")


def register_cas(pki: GmPki, algorithms: list[str], crl_entries: int, out: Path) -> Callable[[Callable[..., Any]], None]:
    """The ``start_yiwang`` setup hook: each CA registered as an operator does, with a CRL
    made by ``openssl ca -gencrl`` holding ``crl_entries`` serials."""

    def setup(cli: Callable[..., Any]) -> None:
        for name in algorithms:
            ca = pki.cas[name]
            row = cli("certificates", "ca", "add", "--name", ca.name, "--province", ca.province,
                      "--pem", str(ca.bundle_path), "--json")
            crl = out / f"crl-{name}.der"
            crl.write_bytes(pki.crl(name, list(range(FIRST_REVOKED, FIRST_REVOKED + crl_entries))))
            loaded = cli("certificates", "crl", "load", "--ca", str(row["id"]), str(crl), "--json")
            run.log(f"registered {ca.name} (CA {row['id']}), CRL with {loaded['entries']:,} entries "
                    f"({crl.stat().st_size / 1024:,.0f} KiB)")

    return setup


def wait_quiet(limit: float, threshold: float = 20.0) -> str:
    """Wait (at most ``limit`` s) until the whole machine was under ``threshold``% busy for
    3 s: on a shared machine, other sessions' test suites take cores from the server being
    measured. Returns what happened, for the report."""
    if limit <= 0:
        return ""
    deadline = time.monotonic() + limit
    while True:
        busy0, all0 = run.machine_busy_seconds()
        time.sleep(3)
        busy1, all1 = run.machine_busy_seconds()
        share = 100 * (busy1 - busy0) / max(all1 - all0, 0.001)
        if share < threshold:
            return f"machine {share:.0f}% busy just before"
        if time.monotonic() > deadline:
            return f"still {share:.0f}% busy after waiting {limit:.0f}s"


def measure(wrk: run.Wrk, base: str, name: str, signers: list[Signer], count: int, quiet: float) -> run.Result:
    t0 = time.monotonic()
    # A few client threads: the GETs and signatures are the client's, done before wrk starts.
    with ThreadPoolExecutor(max_workers=4) as pool:
        lines = list(pool.map(lambda i: prepare_login(base, signers[i % len(signers)]), range(count)))
    run.log(f"  prepared {count} {name} logins in {time.monotonic() - t0:.1f}s")
    # Challenges live 300 s: the wait must leave time to use them.
    waited = wait_quiet(min(quiet, 200.0))
    if waited:
        run.log(f"  {waited}")
    result = wrk.measure(f"certificate_login_{name}", base, "once", lines)
    if waited:
        result.note = "; ".join(filter(None, [result.note, waited]))
    return result


@dataclass
class Summary:
    """One leaf over ``--rounds`` measurements: the median of each column (a noisy round on a
    shared machine moves a median less than a mean), every round kept for the report."""

    rounds: list[run.Result]

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.rounds))

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)


def table(results: dict[str, Summary]) -> str:
    base = results.get("ecdsa") or results.get("rsa")
    base_cpu = base.median("cpu_ms_per_request") if base else 0.0
    head = ["leaf", "logins/s", "p50 ms", "p99 ms", "errors", "CPU ms/login", "CPU / ECDSA" if "ecdsa" in results else "CPU / RSA"]
    rows = [head, ["---"] * len(head)]
    for name, r in results.items():
        cpu = r.median("cpu_ms_per_request")
        rows.append([name, f"{r.median('rps'):.0f}", f"{r.median('p50_ms'):.1f}", f"{r.median('p99_ms'):.1f}",
                     str(r.errors), f"{cpu:.2f}", f"{cpu / base_cpu:.2f}" if base_cpu else "-"])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def verdicts(results: dict[str, Summary], connections: int) -> list[str]:
    out = []
    for name, s in results.items():
        p99 = s.median("p99_ms")
        ok = p99 < TARGET_P99_MS and s.errors == 0
        out.append(f"- {name}: p99 {p99:.1f} ms at {connections} concurrent logins (target < "
                   f"{TARGET_P99_MS:.0f} ms): **{'met' if ok else 'NOT met'}**")
        for i, r in enumerate(s.rounds, start=1):
            out.append(f"  - round {i}: {r.rps:.0f} logins/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
                       f"CPU {r.cpu_ms_per_request:.2f} ms/login; {r.requests} logins in {r.seconds:.1f}s, server "
                       f"{r.server_cpu_pct:.0f}% CPU (per process {r.cpu_by_process_pct}), wrk {r.wrk_cpu_pct:.0f}%, "
                       f"machine {r.machine_busy_pct:.0f}% busy{'; ' + r.note if r.note else ''}")
    return out


def record(path: Path, argv: list[str], text: str, verdict: list[str], info: dict[str, str], args: argparse.Namespace) -> None:
    body = "\n".join([
        "",
        "## Certificate login (issue 10)",
        "",
        f"Produced by `bench/certificate_login.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC:",
        "",
        "```",
        shlex.join([".venv/bin/python", "bench/certificate_login.py", *argv]),
        "```",
        "",
        f"`POST /login/certificate` (no pending authorization request: 303 to the company page) at "
        f"{args.connections} connections with wrk, each prepared login sent once: a fresh browser session, "
        f"its challenge and CSRF token from `GET /login/certificate`, the challenge signed with one of "
        f"{LEAVES} leaves (of {args.companies} companies, each a legal person and account) under each CA of "
        f"tests/support/gm_pki.py (OpenSSL-made; SM2 / SM3, ECDSA P-256, RSA-2048); CRL with {args.crl_entries:,} entries uploaded to each CA. Each POST "
        "validates the path (2 signature checks), checks the challenge signature (a third), binds the "
        "credential (PostgreSQL), starts an SSO session (Redis), writes the audit row and commits. gunicorn "
        f"{args.workers} workers x {args.threads} threads. CPU ms/login: the server's processes only "
        f"(PostgreSQL, Redis and wrk not included). {args.rounds} round(s) of {args.duration} s per leaf, "
        "interleaved; the table shows the median of each column, every round is listed below it.",
        "",
        text,
        "",
        *verdict,
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".",
        "",
    ])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(body)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algorithms", default="sm2,ecdsa", help="comma-separated leaves: " + ", ".join(ALGORITHMS))
    p.add_argument("--duration", type=int, default=10, help="seconds per leaf (default 10)")
    p.add_argument("--connections", type=int, default=16, help="concurrent logins (default 16)")
    p.add_argument("--logins", type=int, default=3000,
                   help="logins prepared per leaf (each is sent once; if they run out first, the rate is "
                        "divided by the time used; challenges live 300 s)")
    p.add_argument("--companies", type=int, default=LEAVES,
                   help=f"companies the {LEAVES} leaves of each CA belong to (default {LEAVES}: one each; 1: all "
                        "one company, whose audit events then share one audit chain)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every leaf this many times, interleaved; the table shows medians (default 1)")
    p.add_argument("--crl-entries", type=int, default=0, help="entries in each CA's CRL (default 0)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker (default 8)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each leaf's measurement, wait up to this long (at most 200) for the machine to "
                        "be under 20%% busy (a machine shared with other work)")
    p.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    p.add_argument("--profile", nargs="?", const="cpu", choices=["cpu", "wall"],
                   help="py-spy on the gunicorn workers during each leaf (bench/out/*/profile-*.txt)")
    args = p.parse_args(argv)
    args.algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    if set(args.algorithms) - set(ALGORITHMS):
        p.error(f"unknown algorithms: {', '.join(sorted(set(args.algorithms) - set(ALGORITHMS)))}")
    if not 1 <= args.companies <= LEAVES:
        p.error(f"--companies must be between 1 and {LEAVES}")
    if not 1 <= args.duration <= 120:
        p.error("--duration must be between 1 and 120 seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (scripts/bootstrap --dev installs it)", file=sys.stderr)
        return 2
    os.environ.setdefault("BENCH_LOADAVG", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    out = BENCH / "out" / time.strftime("certificate-login-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    run.log(f"output in {out}")
    procs = run.Processes()
    results = {name: Summary([]) for name in args.algorithms}
    with run.terminate_on_signal(), contextlib.ExitStack() as cleanup, \
            tempfile.TemporaryDirectory(prefix="bench-gm-pki-") as tmp:
        cleanup.callback(procs.stop_all)
        pki = build_gm_pki(Path(tmp))
        # Leaf i belongs to company i % --companies: 16 companies by default (16 accounts,
        # their audit events spread over the audit chains), 1 for one company's 16 UKeys.
        owners = [made[i % args.companies] for made in [companies(args.companies)] for i in range(LEAVES)]
        signers = {name: [Signer(leaf) for leaf in pki.issue_leaves(name, LEAVES, prefix="login", companies=owners)]
                   for name in args.algorithms}
        target = run.start_yiwang(args, out, procs, cleanup, setup=register_cas(pki, args.algorithms,
                                                                                 args.crl_entries, out))
        wrk = run.Wrk(procs, out, args.connections, args.duration, profile_mode=args.profile or "cpu",
                      profile_pid=target.pid if args.profile else None, server_pgid=target.pid)
        # Every leaf logs in once first: it must succeed, and it binds the credential, so
        # the measured logins are returning holders (no concurrent first bindings).
        for name, group in signers.items():
            for signer in group:
                check_login(target.base, prepare_login(target.base, signer))
            run.log(f"{name}: {len(group)} leaves logged in once")
        # Rounds interleave the leaves, so a noisy spell hits the algorithms compared alike.
        for _ in range(args.rounds):
            for name in args.algorithms:
                r = measure(wrk, target.base, name, signers[name], args.logins, args.wait_quiet)
                results[name].rounds.append(r)
                run.log(f"  {name}: {r.rps:.0f} logins/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, {r.errors} errors, "
                        f"CPU {r.cpu_ms_per_request:.2f} ms/login {r.note}")
        info = run.machine_info({"yiwang": target})
    text = table(results)
    verdict = verdicts(results, args.connections)
    print()
    print(text)
    print()
    print("\n".join(verdict))
    (out / "results.json").write_text(json.dumps({"args": argv, "machine": info,
                                                  "results": {n: [r.as_dict() for r in s.rounds] for n, s in results.items()}}, indent=1))
    if args.record:
        record(BENCH / "RESULTS.md", argv, text, verdict, info, args)
        run.log("appended to bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc or 'Ctrl-C'}); server stopped, database dropped", file=sys.stderr)
        sys.exit(130)
