"""Load benchmark: Yiwang (gunicorn + PostgreSQL + Redis) side by side with
node-oidc-provider (a certified OpenID Provider) configured equivalently.

    .venv/bin/python bench/run.py [--duration 10] [--connections 16] [--only yiwang|node]

Each server is started here on a free loopback port with a fresh database / Redis prefix,
measured with wrk (one thread, Lua scenarios in bench/wrk/scenario.lua) and stopped; the
database and Redis keys are dropped even on failure. Results: a table on stdout, the raw
numbers in bench/out/<time>/, and bench/RESULTS.md (unless --no-record). See
bench/README.md for what is measured and how the two servers are made comparable.
"""

from __future__ import annotations

import abc
import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import html
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "wrk" / "scenario.lua"
NODE_DIR = BENCH / "node"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# Never contacted: codes are read from the Location header.
REDIRECT_URI = "http://127.0.0.1:9/cb"
USERNAME = "benchuser"
PASSWORD = "bench-load-Passw0rd-" + "x" * 8  # noqa: S105 - a throwaway benchmark account
SCOPE = "openid profile"

SCENARIOS = (
    "client_credentials",
    "userinfo",
    "introspection",
    "authorization_code",
    "refresh_token",
    "password_login",
)
# Issue 2 targets: requests/s and p99 (ms) at 16 connections on a 2-core machine.
TARGETS = {"client_credentials": (1000, 50), "userinfo": (1000, 50), "introspection": (1000, 50)}
# The collection of single-use codes must finish well inside their 60 s lifetime.
CODE_COLLECT_SECONDS = 40


# Sections of RESULTS.md written by other benchmarks (bench/certificates.py, bench/realname.py).
KEPT_SECTIONS = ("## Certificate validation (issue 4)", "## Real-name registry look-ups (issue 3)",
                 "## Certificate validation, SM2 beside ECDSA (issue 10)", "## Certificate login (issue 10)",
                 "## Keep-alive clients (issue 12)")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def request_line(method: str, path: str, body: str = "", headers: dict[str, str] | None = None) -> str:
    """One request for scenario.lua: tab-separated METHOD, PATH, BODY, headers."""
    fields = [method, path, body, *(f"{k}: {v}" for k, v in (headers or {}).items())]
    assert not any("\t" in f or "\n" in f for f in fields)
    return "\t".join(fields)


# -- processes ------------------------------------------------------------------------


class Processes:
    """Every process the benchmark starts, so each is stopped even on failure."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], *, log_path: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as out:
            # A session of its own: stopping the group stops gunicorn's or node's workers.
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Workers left behind by a dead master are in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self._procs)):
            self.stop(proc)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not become ready: {log_path.read_text(errors='replace')[-3000:]}")


def probe(base: str, line: str) -> None:
    """Send one prepared request before the run: a scenario whose requests fail is a
    broken benchmark, not a slow server."""
    method, path, body, *headers = line.split("\t")
    resp = requests.request(method, base + path, data=body or None, allow_redirects=False, timeout=30,
                            headers=dict(h.split(": ", 1) for h in headers))
    if resp.status_code >= 400:
        raise RuntimeError(f"{method} {path} answered {resp.status_code}: {resp.text[:500]}")


def group_cpu_seconds(pgid: int | None) -> dict[int, float]:
    """CPU time (user + system) used so far by each live process of one process group;
    the children's times are included, so workers that exited (gunicorn recycles them)
    still count, in their master's entry."""
    if pgid is None:
        return {}
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            # Fields after the command: state ppid pgrp ... utime stime cutime cstime.
            if int(fields[2]) == pgid:
                out[int(stat.parent.name)] = sum(int(v) for v in fields[11:15]) / tick
    return out


def worker_split(before: dict[int, float], after: dict[int, float]) -> list[float]:
    """Each process's CPU in this interval, largest first (shows whether the load was
    spread over the workers)."""
    return sorted((round(after[p] - before.get(p, 0.0), 2) for p in after), reverse=True)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def summarize_profile(path: Path, top: int = 25) -> None:
    """From py-spy's collapsed stacks, the share of samples spent inside each function
    (inclusive) and at the top of the stack (self), written next to the profile. Idle
    gunicorn threads (waiting in select/accept/queue) are left out."""
    if not path.exists():
        return
    inclusive: dict[str, int] = {}
    self_time: dict[str, int] = {}
    total = 0
    idle = re.compile(r"\((?:select|selectors|threading|queue|socket)\.py|wait \(threading|_worker \(")
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if idle.search(frames[-1]):
            continue
        count = int(count_text)
        total += count
        for name in dict.fromkeys(re.sub(r":\d+\)$", ")", f) for f in frames):
            inclusive[name] = inclusive.get(name, 0) + count
        leaf = re.sub(r":\d+\)$", ")", frames[-1])
        self_time[leaf] = self_time.get(leaf, 0) + count
    if not total:
        return
    lines = [f"{total} busy samples", "", "inclusive %  function"]
    lines += [f"{100 * c / total:6.1f}  {n}" for n, c in sorted(inclusive.items(), key=lambda x: -x[1])[: top * 3]]
    lines += ["", "self %  function"]
    lines += [f"{100 * c / total:6.1f}  {n}" for n, c in sorted(self_time.items(), key=lambda x: -x[1])[:top]]
    path.with_suffix(".summary.txt").write_text("\n".join(lines) + "\n")


# -- the load generator -----------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    seconds: float
    wrk_cpu_pct: float
    # CPU used by the server's processes (100 = one core), and the whole machine's
    # busy share (100 = every core busy: the server, PostgreSQL, Redis, wrk, and anything
    # else running).
    server_cpu_pct: float = 0.0
    machine_busy_pct: float = 0.0
    # Server CPU time per request (PostgreSQL and Redis not included): steadier than
    # requests/s when other work shares the machine.
    cpu_ms_per_request: float = 0.0
    # The server CPU per process (100 = one core), largest first: a worker near 100
    # beside idle ones means the connections were not spread over the workers.
    cpu_by_process_pct: list[int] = field(default_factory=list)
    note: str = ""
    # The keep-alive client only (--client autocannon): responses that said
    # ``Connection: close``, and connections opened again after the first ones.
    closes: int | None = None
    reconnects: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Wrk:
    procs: Processes
    out: Path
    connections: int
    duration: int
    # The gunicorn master's pid when --profile is on: py-spy samples its workers.
    profile_pid: int | None = None
    # "cpu": only threads holding the GIL (Python CPU); "wall": every busy thread,
    # including those waiting on PostgreSQL, Redis or the socket.
    profile_mode: str = "cpu"
    # The server's process group: its CPU use is reported per scenario.
    server_pgid: int | None = None

    def _cmd(self, base: str, mode: str, req: Path, result: Path, duration: int) -> list[str]:
        return [
            "wrk", "-t1", f"-c{self.connections}", f"-d{duration}s", "--timeout", "10s",
            "-s", str(LUA), base, "--", mode, str(req), str(result),
        ]

    def measure(self, scenario: str, base: str, mode: str, lines: list[str]) -> Result:
        if mode == "cycle":
            for line in lines:
                probe(base, line)
        req = self.out / f"{scenario}.req"
        result_path = self.out / f"{scenario}.json"
        req.write_text("\n".join(lines) + "\n")
        result_path.unlink(missing_ok=True)
        log(f"  measuring {scenario}: {self.connections} connections, {self.duration}s ({len(lines)} requests prepared)")
        profiler = None
        if self.profile_pid is not None:
            profiler = self.procs.start(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(self.profile_pid),
                 "--subprocesses", "--nonblocking", "--rate", "200", "--duration", str(self.duration),
                 *(["--gil"] if self.profile_mode == "cpu" else []),
                 "--format", "raw", "--output", str(self.out / f"profile-{scenario}.txt")],
                log_path=self.out / "py-spy.log",
            )
        cpu0, (busy0, all0) = group_cpu_seconds(self.server_pgid), machine_busy_seconds()
        proc = self.procs.start(self._cmd(base, mode, req, result_path, self.duration), log_path=self.out / "wrk.log")
        # wait4 gives the load generator's own CPU time: evidence it is not the bottleneck.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu1, (busy1, all1) = group_cpu_seconds(self.server_pgid), machine_busy_seconds()
        server_cpu = sum(cpu1.values()) - sum(v for p, v in cpu0.items() if p in cpu1)
        split = worker_split(cpu0, cpu1)
        self.procs.stop(proc)
        if profiler is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(timeout=30)
            self.procs.stop(profiler)
            summarize_profile(self.out / f"profile-{scenario}.txt")
        if proc.returncode != 0 or not result_path.exists():
            raise RuntimeError(f"wrk failed for {scenario}: {(self.out / 'wrk.log').read_text()[-2000:]}")
        data = json.loads(result_path.read_text())
        seconds = data["duration_us"] / 1e6
        note = ""
        if data["exhausted_at"] > 0:
            # "once" mode ran out of prepared single-use requests: divide by the time used.
            seconds = data["exhausted_at"] - data["started_at"]
            note = f"all {data['used']} prepared requests used in {seconds:.1f}s"
        errors = sum(data["errors"].values())
        cpu = usage.ru_utime + usage.ru_stime
        wall = max(data["duration_us"] / 1e6, 0.001)
        (self.out / f"{scenario}.json").write_text(json.dumps(
            {**data, "wrk_cpu_s": cpu, "server_cpu_s": server_cpu, "server_cpu_by_process_s": split,
             "machine_busy_s": busy1 - busy0,
             "machine_cpu_s": all1 - all0}, indent=1))
        return Result(
            scenario=scenario,
            rps=data["requests"] / seconds if seconds > 0 else 0.0,
            p50_ms=data["latency_us"]["p50"] / 1000,
            p99_ms=data["latency_us"]["p99"] / 1000,
            errors=errors,
            requests=data["requests"],
            seconds=seconds,
            wrk_cpu_pct=100 * cpu / wall,
            server_cpu_pct=100 * server_cpu / wall,
            machine_busy_pct=100 * (busy1 - busy0) / max(all1 - all0, 0.001),
            cpu_ms_per_request=1000 * server_cpu / max(data["requests"], 1),
            cpu_by_process_pct=[round(100 * c / wall) for c in split if c > 0.01 * wall],
            note=note,
            closes=data.get("closes"),
            reconnects=data.get("reconnects"),
        )

    def collect_codes(self, base: str, line: str, count: int) -> list[str]:
        """Drive the authorization endpoint (SSO session, consent remembered) until
        ``count`` codes were issued or CODE_COLLECT_SECONDS passed."""
        req = self.out / "collect.req"
        codes_path = self.out / "codes.txt"
        req.write_text(line + "\n")
        codes_path.unlink(missing_ok=True)
        codes_path.touch()
        proc = self.procs.start(
            self._cmd(base, "collect", req, codes_path, CODE_COLLECT_SECONDS + 5), log_path=self.out / "wrk.log"
        )
        deadline = time.monotonic() + CODE_COLLECT_SECONDS
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                with codes_path.open("rb") as fh:
                    if sum(1 for _ in fh) >= count:
                        break
                time.sleep(0.2)
        finally:
            self.procs.stop(proc)
        codes = [c for c in codes_path.read_text().split("\n") if c]
        return codes[:count]


@dataclass
class KeepAliveClient(Wrk):
    """Issue 12: replayable scenarios ("cycle") through autocannon (bench/node/keepalive.mjs),
    which keeps each connection open and reconnects only when the server closes it, as a
    portal's HTTP client library or a load balancer's pool does, and counts the closes.
    wrk also keeps connections alive but reconnects silently. The single-use and chained
    scenarios (codes, refresh tokens) still run on wrk."""

    def _cmd(self, base: str, mode: str, req: Path, result: Path, duration: int) -> list[str]:
        if mode != "cycle":
            return super()._cmd(base, mode, req, result, duration)
        return ["node", str(NODE_DIR / "keepalive.mjs"), base, str(self.connections), str(duration), str(req),
                str(result)]


# -- the servers ----------------------------------------------------------------------


@dataclass
class Client:
    client_id: str
    secret: str

    @property
    def auth(self) -> str:
        return basic(self.client_id, self.secret)


@dataclass
class Target(abc.ABC):
    """A running OpenID Provider and what the scenarios need from it."""

    name: str
    base: str
    paths: dict[str, str]
    rp: Client
    svc: Client
    info: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None

    def authorize_url(self, challenge: str, state: str = "bench") -> str:
        query = urlencode({
            "client_id": self.rp.client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": SCOPE,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        })
        return f"{self.paths['authorize']}?{query}"

    # A scripted browser: follows redirects and fills the login and consent forms.
    def browser_flow(self, session: requests.Session, challenge: str) -> str:
        resp = session.get(self.base + self.authorize_url(challenge), allow_redirects=False, timeout=30)
        for _ in range(12):
            location = resp.headers.get("Location")
            if location:
                if location.startswith(REDIRECT_URI):
                    code = parse_qs(urlsplit(location).query).get("code")
                    if not code:
                        raise RuntimeError(f"{self.name}: authorization error: {location}")
                    return code[0]
                resp = session.get(urljoin(resp.url, location), allow_redirects=False, timeout=30)
                continue
            form = re.search(r'<form method="post" action="([^"]+)"', resp.text)
            if resp.status_code != 200 or form is None:
                raise RuntimeError(f"{self.name}: unexpected page {resp.status_code}: {resp.text[:500]}")
            data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', resp.text))
            data = {k: html.unescape(v) for k, v in data.items()}
            if 'name="password"' in resp.text:
                data.update(identifier=USERNAME, password=PASSWORD)
            else:
                data["decision"] = "allow"
                # Yiwang's per-claim consent: submit the boxes ticked on the page, as a browser does.
                ticked = [re.search(r'value="([^"]*)"', tag) for tag in re.findall(r"<input[^>]*>", resp.text)
                          if 'name="claim"' in tag and " checked" in tag]
                if ticked:
                    data["claim"] = [m.group(1) for m in ticked if m]  # type: ignore[assignment]
            resp = session.post(urljoin(resp.url, html.unescape(form.group(1))), data=data,
                                allow_redirects=False, timeout=30)
        raise RuntimeError(f"{self.name}: too many steps in the browser flow")

    def cookie_header(self, session: requests.Session, path: str) -> str:
        prepared = session.prepare_request(requests.Request("GET", self.base + path))
        return str(prepared.headers.get("Cookie", ""))

    def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        resp = requests.post(self.base + self.paths["token"], headers={"Authorization": self.rp.auth}, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
        }, timeout=30)
        if resp.status_code != 200:
            raise RuntimeError(f"{self.name}: code exchange failed {resp.status_code}: {resp.text[:300]}")
        data: dict[str, Any] = resp.json()
        return data

    @abc.abstractmethod
    def login_request(self) -> str:
        """A password login POST inside a pending authorization request, replayable
        (the form's CSRF token / interaction cookie stay valid)."""


class YiwangTarget(Target):
    def login_request(self) -> str:
        s = requests.Session()
        _, challenge = pkce_pair()
        resp = s.get(self.base + self.authorize_url(challenge), allow_redirects=False, timeout=30)
        login = s.get(urljoin(resp.url, resp.headers["Location"]), timeout=30)
        data = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', login.text))
        body = urlencode({**data, "identifier": USERNAME, "password": PASSWORD})
        return request_line("POST", "/login", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": self.cookie_header(s, "/login"),
        })


class NodeTarget(Target):
    def login_request(self) -> str:
        s = requests.Session()
        _, challenge = pkce_pair()
        resp = s.get(self.base + self.authorize_url(challenge), allow_redirects=False, timeout=30)
        path = urlsplit(urljoin(resp.url, resp.headers["Location"])).path
        body = urlencode({"identifier": USERNAME, "password": PASSWORD})
        return request_line("POST", f"{path}/login", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": self.cookie_header(s, f"{path}/login"),
        })


def start_yiwang(args: argparse.Namespace, out: Path, procs: Processes, cleanup: contextlib.ExitStack,
                 setup: Callable[[Callable[..., Any]], None] | None = None) -> YiwangTarget:
    """A fresh database and Redis prefix, the bench clients and user, then gunicorn.
    ``setup`` gets the ``flask`` CLI runner (``cli("certificates", "ca", "add", ...)``, JSON
    output parsed when ``--json`` is given) to register more before the server starts
    (bench/certificate_login.py registers its CAs and CRLs)."""
    import psycopg
    import redis

    db_name = f"yiwang_bench_{os.getpid()}"
    prefix = f"yiwang-bench:{os.getpid()}:"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')

    def drop() -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(match=prefix + "*", count=1000):
            r.delete(key)
        log(f"yiwang: dropped database {db_name} and Redis prefix {prefix}")

    cleanup.callback(drop)
    db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIWANG_")}
    env.update({
        # Development mode only for the http loopback issuer; every other setting as in
        # production (PostgreSQL, Redis, several workers, explicit keys).
        "YIWANG_ENV": "development",
        "YIWANG_ISSUER": issuer,
        "YIWANG_SECRET_KEY": secrets.token_urlsafe(32),
        "YIWANG_INDEX_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "YIWANG_DATA_KEYS": "b1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "YIWANG_DATABASE_URL": db_url.replace("postgresql://", "postgresql+psycopg://", 1),
        "YIWANG_REDIS_URL": REDIS_URL,
        "YIWANG_REDIS_PREFIX": prefix,
        "YIWANG_INSTANCE_PATH": str(out / "yiwang-instance"),
        "YIWANG_WORKERS": str(args.workers),
        "YIWANG_THREADS": str(args.threads),
        **({"YIWANG_WORKER_CONNECTIONS": str(args.worker_connections)} if args.worker_connections else {}),
        "YIWANG_BIND": f"127.0.0.1:{port}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    })

    def cli(*cmd: str) -> Any:
        out_ = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *cmd], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        if out_.returncode != 0:
            raise RuntimeError(f"flask {' '.join(cmd)} failed: {out_.stderr[-2000:]}")
        return json.loads(out_.stdout.strip().splitlines()[-1]) if "--json" in cmd else None

    log(f"yiwang: migrating {db_name}")
    cli("db", "upgrade")
    cli("keys", "ensure")
    rp = cli("clients", "create", "--name", "bench-rp", "--redirect-uri", REDIRECT_URI,
             "--grant-type", "authorization_code", "--grant-type", "refresh_token",
             "--scope", "openid", "--scope", "profile",
             "--token-endpoint-auth-method", "client_secret_basic", "--json")
    svc = cli("clients", "create", "--name", "bench-svc", "--grant-type", "client_credentials",
              "--scope", "profile", "--token-endpoint-auth-method", "client_secret_basic", "--json")
    cli("users", "create", "--username", USERNAME, "--password", PASSWORD, "--name", "Bench User", "--json")
    if setup is not None:
        setup(cli)

    log_path = out / "yiwang.log"
    # BENCH_YIWANG_APP: another module:variable to serve, to measure a variant of the app
    # (e.g. one that wraps create_app with different engine options) without editing it.
    app_spec = os.environ.get("BENCH_YIWANG_APP", "wsgi:app")
    proc = procs.start(server_command(args, app_spec, port, env), log_path=log_path, cwd=ROOT, env=env)
    cleanup.callback(procs.stop, proc)
    wait_ready(issuer + "/readyz", proc, log_path)
    log(f"yiwang: gunicorn ready on {issuer} ({args.workers} workers x {args.threads} threads)")
    return YiwangTarget(
        name="yiwang",
        base=issuer,
        paths={"authorize": "/authorize", "token": "/token", "userinfo": "/userinfo", "introspect": "/introspect"},
        rp=Client(rp["client_id"], rp["client_secret"]),
        svc=Client(svc["client_id"], svc["client_secret"]),
        info={"workers": args.workers, "threads": args.threads,
              "server": "granian wsgi" if args.server == "granian" else f"gunicorn {args.server}",
              "worker_connections": args.worker_connections or "config default"},
        pid=proc.pid,
    )


def server_command(args: argparse.Namespace, app_spec: str, port: int, env: dict[str, str]) -> list[str]:
    """Issue 12: the WSGI server to measure. gthread (the default) and gevent run under
    gunicorn with config/gunicorn.conf.py; granian is the Rust HTTP server in WSGI mode,
    with --workers processes and --threads blocking threads each."""
    if args.server == "granian":
        return [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(args.workers), "--blocking-threads", str(args.threads),
                "--no-ws", "--log-level", "warning", app_spec]
    if args.server == "gevent":
        env["YIWANG_WORKER_CLASS"] = "gevent"
    return [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"), app_spec]


def npm_ci(args: argparse.Namespace) -> None:
    """The pinned node packages (package-lock.json): oidc-provider and autocannon."""
    if not all((NODE_DIR / "node_modules" / p).exists() for p in ("oidc-provider", "autocannon")) or args.npm_install:
        log("node: npm ci")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True,
                       timeout=600)


def start_node(args: argparse.Namespace, out: Path, procs: Processes, cleanup: contextlib.ExitStack) -> NodeTarget:
    import redis
    from joserfc.jwk import ECKey, RSAKey

    npm_ci(args)
    prefix = f"oidc-bench:{os.getpid()}:"

    def drop() -> None:
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(match=prefix + "*", count=1000):
            r.delete(key)
        log(f"node: dropped Redis prefix {prefix}")

    cleanup.callback(drop)
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    rp = Client("bench-rp", secrets.token_urlsafe(32))
    svc = Client("bench-svc", secrets.token_urlsafe(32))
    ec = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256", "kid": "ec1"}, private=True)
    rsa = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256", "kid": "rsa1"}, private=True)
    config = {
        "issuer": issuer,
        "port": port,
        "workers": args.workers,
        "redis_url": REDIS_URL,
        "redis_prefix": prefix,
        "cookie_key": secrets.token_urlsafe(32),
        "jwks": {"keys": [ec.as_dict(private=True), rsa.as_dict(private=True)]},
        "account": {"id": "acct-1", "username": USERNAME, "password": PASSWORD, "name": "Bench User",
                    "updated_at": int(time.time())},
        "clients": [
            {
                "client_id": rp.client_id, "client_secret": rp.secret, "redirect_uris": [REDIRECT_URI],
                "response_types": ["code"], "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_basic", "id_token_signed_response_alg": "ES256",
                "subject_type": "pairwise", "scope": SCOPE,
            },
            {
                "client_id": svc.client_id, "client_secret": svc.secret, "redirect_uris": [],
                "response_types": [], "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
        ],
    }
    env = dict(os.environ, BENCH_CONFIG=json.dumps(config), NODE_ENV="production")
    log_path = out / "node.log"
    proc = procs.start(["node", "server.mjs"], log_path=log_path, cwd=NODE_DIR, env=env)
    cleanup.callback(procs.stop, proc)
    wait_ready(issuer + "/.well-known/openid-configuration", proc, log_path)
    version = json.loads((NODE_DIR / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
    log(f"node: oidc-provider {version} ready on {issuer} ({args.workers} cluster workers)")
    return NodeTarget(
        name="node",
        base=issuer,
        paths={"authorize": "/auth", "token": "/token", "userinfo": "/me", "introspect": "/token/introspection"},
        rp=rp,
        svc=svc,
        info={"workers": args.workers, "server": f"oidc-provider {version}, node {platform_node_version()}"},
        pid=proc.pid,
    )


def platform_node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def token_format(token: str) -> str:
    if token.count(".") != 2:
        return f"opaque ({len(token)} chars)"
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return f"JWT {header.get('alg')} typ {header.get('typ')}"


def describe(target: Target, user_tokens: dict[str, Any]) -> None:
    """Check and record what the server issues, so the comparison states it."""
    for name in ("access_token", "id_token", "refresh_token"):
        if name not in user_tokens:
            raise RuntimeError(f"{target.name}: the code exchange returned no {name}")
    resp = requests.post(target.base + target.paths["token"], data={"grant_type": "client_credentials"},
                         headers={"Authorization": target.svc.auth}, timeout=30)
    resp.raise_for_status()
    target.info["user access token"] = token_format(user_tokens["access_token"])
    target.info["id token"] = token_format(user_tokens["id_token"])
    target.info["client_credentials token"] = token_format(resp.json()["access_token"])
    log(f"{target.name}: " + "; ".join(f"{k}: {target.info[k]}" for k in
                                       ("user access token", "id token", "client_credentials token")))


# -- scenarios ------------------------------------------------------------------------


def run_target(target: Target, wrk: Wrk, scenarios: list[str]) -> dict[str, Result]:
    results: dict[str, Result] = {}
    browser = requests.Session()
    verifier, challenge = pkce_pair()
    # One login and consent: later authorization requests reuse the SSO session.
    first_code = target.browser_flow(browser, challenge)
    describe(target, target.exchange(first_code, verifier))
    sso_cookie = target.cookie_header(browser, target.paths["authorize"])
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def user_codes(n: int) -> list[tuple[str, str]]:
        out = []
        for _ in range(n):
            v, c = pkce_pair()
            out.append((target.browser_flow(browser, c), v))
        return out

    def access_tokens(n: int) -> list[dict[str, Any]]:
        return [target.exchange(code, v) for code, v in user_codes(n)]

    for scenario in scenarios:
        log(f"{target.name}: preparing {scenario}")
        if scenario == "client_credentials":
            lines = [request_line("POST", target.paths["token"], "grant_type=client_credentials",
                                  {**form, "Authorization": target.svc.auth})]
            results[scenario] = wrk.measure(scenario, target.base, "cycle", lines)
        elif scenario == "userinfo":
            # Access tokens live 300 s: made right before the scenario.
            lines = [request_line("GET", target.paths["userinfo"], "",
                                  {"Authorization": "Bearer " + t["access_token"]}) for t in access_tokens(8)]
            results[scenario] = wrk.measure(scenario, target.base, "cycle", lines)
        elif scenario == "introspection":
            lines = [request_line("POST", target.paths["introspect"],
                                  urlencode({"token": t["access_token"], "token_type_hint": "access_token"}),
                                  {**form, "Authorization": target.rp.auth}) for t in access_tokens(8)]
            results[scenario] = wrk.measure(scenario, target.base, "cycle", lines)
        elif scenario == "authorization_code":
            # Codes live 60 s and are single use: collected right before, all with one
            # PKCE pair (the server hashes the verifier for each code either way).
            verifier, challenge = pkce_pair()
            cc = results.get("client_credentials")
            want = int(max(cc.rps if cc else 1000, 300) * wrk.duration * 1.2) + wrk.connections
            line = request_line("GET", target.authorize_url(challenge), "", {"Cookie": sso_cookie})
            t0 = time.monotonic()
            codes = wrk.collect_codes(target.base, line, want)
            log(f"  collected {len(codes)} codes in {time.monotonic() - t0:.1f}s")
            if len(codes) < wrk.connections:
                raise RuntimeError(f"{target.name}: only {len(codes)} authorization codes collected")
            lines = [request_line("POST", target.paths["token"], urlencode({
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier}), {**form, "Authorization": target.rp.auth}) for code in codes]
            results[scenario] = wrk.measure(scenario, target.base, "once", lines)
        elif scenario == "refresh_token":
            # Each refresh token is usable once (rotation): scenario.lua chains each
            # response's new token into the next request.
            tokens = access_tokens(2 * wrk.connections)
            lines = [request_line("POST", target.paths["token"], urlencode({
                "grant_type": "refresh_token", "refresh_token": t["refresh_token"]}),
                {**form, "Authorization": target.rp.auth}) for t in tokens]
            results[scenario] = wrk.measure(scenario, target.base, "chain", lines)
        elif scenario == "password_login":
            lines = [target.login_request() for _ in range(4)]
            results[scenario] = wrk.measure(scenario, target.base, "cycle", lines)
        r = results[scenario]
        log(f"  {scenario}: {r.rps:.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
            f"{r.errors} errors; server CPU {r.cpu_ms_per_request:.2f} ms/request; CPU: server {r.server_cpu_pct:.0f}% "
            f"(per process {r.cpu_by_process_pct}), wrk {r.wrk_cpu_pct:.0f}%, "
            f"machine {r.machine_busy_pct:.0f}% busy {r.note}")
    return results


# -- report ---------------------------------------------------------------------------


def argon2_bound() -> dict[str, float]:
    """Logins/s the machine could do if a login cost nothing but Yiwang's argon2id verify."""
    sys.path.insert(0, str(ROOT))
    from idp.passwords import PasswordHasher

    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        times.append(time.perf_counter() - t0)
    verify_ms = sorted(times)[len(times) // 2] * 1000
    return {"verify_ms": verify_ms, "bound_rps": (os.cpu_count() or 1) * 1000 / verify_ms}


def machine_info(targets: dict[str, Target]) -> dict[str, str]:
    def first(path: str, pattern: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if re.match(pattern, line):
                    return line.split(":", 1)[1].strip()
        return "?"

    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    import psycopg

    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg = str(row[0]) if row else "?"
    redis_version = next((line.split(":", 1)[1] for line in run(["redis-cli", "-u", REDIS_URL, "INFO", "server"])
                          .splitlines() if line.startswith("redis_version:")), "?")
    mem_kb = first("/proc/meminfo", r"MemTotal")
    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} (nproc {run(['nproc'])})",
        "cpu model": first("/proc/cpuinfo", r"model name"),
        "memory": f"{int(mem_kb.split()[0]) // 1024} MiB" if mem_kb != "?" else "?",
        "kernel": platform.release(),
        "load average at start": os.environ.get("BENCH_LOADAVG", "?"),
        "PostgreSQL": pg,
        "Redis": redis_version.strip(),
        "Python": platform.python_version(),
        "wrk": run(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else "?",
    }
    for name, target in targets.items():
        info[name] = ", ".join(f"{k} {v}" for k, v in target.info.items())
    return info


def table(results: dict[str, dict[str, Result]], scenarios: list[str]) -> str:
    names = [n for n in ("yiwang", "node") if n in results]
    head = ["scenario"]
    closes = any(r.closes is not None for rs in results.values() for r in rs.values())
    for n in names:
        head += [f"{n} req/s", f"{n} p50 ms", f"{n} p99 ms", f"{n} errors", f"{n} CPU ms/req"]
        head += [f"{n} closes/reconnects"] if closes else []
    if len(names) == 2:
        head += ["req/s ratio (yiwang/node)", "p99 ratio (yiwang/node)", "CPU/req ratio (yiwang/node)"]
    rows = [head, ["---"] * len(head)]
    for s in scenarios:
        row = [s]
        for n in names:
            r = results[n].get(s)
            row += ([f"{r.rps:.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", str(r.errors), f"{r.cpu_ms_per_request:.2f}"]
                    if r else ["-"] * 5)
            if closes:
                row += [f"{r.closes}/{r.reconnects}" if r and r.closes is not None else "-"]
        if len(names) == 2:
            a, b = results["yiwang"].get(s), results["node"].get(s)
            row += [f"{a.rps / b.rps:.2f}" if a and b and b.rps else "-",
                    f"{a.p99_ms / b.p99_ms:.2f}" if a and b and b.p99_ms else "-",
                    f"{a.cpu_ms_per_request / b.cpu_ms_per_request:.2f}" if a and b and b.cpu_ms_per_request else "-"]
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def verdicts(results: dict[str, dict[str, Result]], bound: dict[str, float], connections: int) -> list[str]:
    out = []
    yi = results.get("yiwang", {})
    for s, (rps, p99) in TARGETS.items():
        r = yi.get(s)
        if r:
            ok = r.rps >= rps and r.p99_ms < p99 and r.errors == 0
            out.append(f"- {s}: {r.rps:.0f} req/s, p99 {r.p99_ms:.1f} ms at {connections} connections "
                       f"(target ≥ {rps} req/s, p99 < {p99} ms): **{'met' if ok else 'NOT met'}**; the server "
                       f"used {r.server_cpu_pct:.0f}% CPU (200% = 2 cores) while the machine was "
                       f"{r.machine_busy_pct:.0f}% busy")
    r = yi.get("password_login")
    if r:
        out.append(f"- password_login: {r.rps:.0f} logins/s; one argon2id verify (m=19 MiB, t=2, p=1) takes "
                   f"{bound['verify_ms']:.0f} ms here, so argon2id alone allows ≤ {bound['bound_rps']:.0f}/s "
                   f"on {os.cpu_count()} cores: {100 * r.rps / bound['bound_rps']:.0f}% of that bound")
    return out


def rerun_args(argv: list[str]) -> list[str]:
    """The command line without the options that only concern this report."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--label", "--results"):
            skip = True
            continue
        if arg.startswith(("--label=", "--results=")) or arg in ("--render",):
            continue
        out.append(arg)
    return out


def write_results(path: Path, args: argparse.Namespace, reports: list[tuple[int, str, list[str]]],
                  info: dict[str, str], runs: dict[int, dict[str, dict[str, Result]]], argv: list[str]) -> None:
    notes = []
    for count, results in runs.items():
        for name, rs in results.items():
            for r in rs.values():
                if r.note:
                    notes.append(f"- {name} {r.scenario} ({count} conn.): {r.note}")
                notes.append(f"- {name} {r.scenario} ({count} conn.): {r.requests} requests in {r.seconds:.1f}s; "
                             f"CPU used by the server {r.server_cpu_pct:.0f}% (per process {r.cpu_by_process_pct}), "
                             f"by the load generator {r.wrk_cpu_pct:.0f}% (100% = one core); "
                             f"machine {r.machine_busy_pct:.0f}% busy")
    generator = ("autocannon (bench/node/keepalive.mjs, keep-alive; closes/reconnects counted) for the replayable "
                 "scenarios, wrk for codes and refresh tokens" if args.client == "autocannon" else "wrk with one thread")
    title, sub = (f"## {args.section}", "###") if args.section else ("# Benchmark results", "##")
    tables: list[str] = []
    for count, text, verdict in reports:
        tables += [f"{sub} {count} connections" if len(reports) > 1 else "", "", text, "",
                   *(verdict or ["- (Yiwang not measured in this run)"]), ""]
    body = [
        title,
        "",
        f"**{args.label}**" if args.label else "",
        "",
        "Produced by `bench/run.py` (see bench/README.md for what each scenario does and how the two",
        "servers are configured) with:",
        "",
        "```",
        shlex.join([".venv/bin/python", "bench/run.py", *rerun_args(argv)]),
        "```",
        "",
        f"{args.connections} connections, {args.duration} s per scenario, {generator}. Targets are issue 2's "
        "(≥ 1000 req/s, p99 < 50 ms).",
        "",
        *tables,
        f"{sub} Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        f"{sub} Details",
        "",
        *notes,
        "",
    ]
    text = "\n".join(body) + "\n"
    old = path.read_text() if path.exists() else ""
    starts = sorted(i for marker in KEPT_SECTIONS if (i := old.find(marker)) >= 0)
    if not args.section:
        # The main report owns only the part before the first section other benchmarks
        # (certificates, real-name registry, keep-alive) write.
        path.write_text(text + ("\n" + old[starts[0]:] if starts else ""))
        return
    at = old.find(title + "\n")
    if at < 0:
        path.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    following = [i for i in starts if i > at]
    end = following[0] if following else len(old)
    path.write_text(old[:at] + text + ("\n" + old[end:] if following else ""))


# -- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10, help="seconds per scenario (default 10, at most 50)")
    p.add_argument("--connections", default="16",
                   help="concurrent connections (default 16), or several counts measured in turn: 16,64,256")
    p.add_argument("--section", default="",
                   help="write the report as this section of RESULTS.md (e.g. 'Keep-alive clients (issue 12)'), "
                   "replacing a section of that name and keeping the rest, instead of the main report")
    p.add_argument("--only", choices=["yiwang", "node"], help="measure one server only")
    p.add_argument("--client", choices=["wrk", "autocannon"], default="wrk",
                   help="load generator for the replayable scenarios: wrk (default) or autocannon, the keep-alive "
                   "client that counts Connection: close responses and reconnects (issue 12)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of: " + ", ".join(SCENARIOS))
    # One worker per core; config/gunicorn.conf.py caps each worker's connections so the
    # keep-alive connections spread over the workers.
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers and node cluster workers (default 2)")
    p.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker (default 8)")
    p.add_argument("--server", choices=["gthread", "gevent", "granian"], default="gthread",
                   help="WSGI server: gunicorn gthread (default), gunicorn gevent, or granian (issue 12)")
    p.add_argument("--worker-connections", type=int, default=0,
                   help="gunicorn worker_connections (YIWANG_WORKER_CONNECTIONS; default: config/gunicorn.conf.py's)")
    p.add_argument("--label", default="", help="a line written at the top of RESULTS.md (e.g. 'preliminary')")
    p.add_argument("--results", type=Path, default=BENCH / "RESULTS.md", help="where to write the report")
    p.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    p.add_argument("--profile", nargs="?", const="cpu", choices=["cpu", "wall"],
                   help="sample Yiwang's workers with py-spy during each scenario (bench/out/*/profile-*.txt): "
                   "cpu (default: threads holding the GIL) or wall (also threads waiting on I/O)")
    p.add_argument("--render", metavar="OUT_DIR", help="only rewrite RESULTS.md from bench/out/<time>/results.json")
    p.add_argument("--npm-install", action="store_true", help="run npm ci even if node_modules exists")
    args = p.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if not 1 <= args.duration <= 50:
        # Single-use codes live 60 s: collection plus measurement must fit inside.
        p.error("--duration must be between 1 and 50 seconds")
    return args


@contextlib.contextmanager
def terminate_on_signal() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run through the normal clean-up path, like Ctrl-C."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (scripts/bootstrap --dev installs it)", file=sys.stderr)
        return 2
    if (args.only != "yiwang" or args.client == "autocannon") and shutil.which("node") is None:
        print("node is not installed (needed for the node-oidc-provider side; or use --only yiwang)", file=sys.stderr)
        return 2
    if args.client == "autocannon":
        npm_ci(args)
    os.environ.setdefault("BENCH_LOADAVG", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    out = BENCH / "out" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    log(f"output in {out}")
    procs = Processes()
    counts = connection_counts(args.connections)
    # results[connections][server][scenario]
    runs: dict[int, dict[str, dict[str, Result]]] = {c: {} for c in counts}
    targets: dict[str, Target] = {}
    names = [args.only] if args.only else ["yiwang", "node"]
    with terminate_on_signal(), contextlib.ExitStack() as cleanup:
        cleanup.callback(procs.stop_all)
        generator = KeepAliveClient if args.client == "autocannon" else Wrk
        wrk = generator(procs, out, counts[0], args.duration, profile_mode=args.profile or "cpu")
        for name in names:
            # Each server runs alone: the other is stopped before it starts.
            with contextlib.ExitStack() as server_stack:
                starter = start_yiwang if name == "yiwang" else start_node
                target = starter(args, out, procs, server_stack)
                targets[name] = target
                wrk.profile_pid = target.pid if args.profile and name == "yiwang" else None
                wrk.server_pgid = target.pid
                for count in counts:
                    # Inputs (tokens, codes) are prepared again right before each scenario.
                    wrk.connections = count
                    runs[count][name] = run_target(target, wrk, args.scenarios)
        info = machine_info(targets)
    bound = argon2_bound() if "password_login" in args.scenarios and any("yiwang" in r for r in runs.values()) else {}
    reports = [(count, table(results, args.scenarios), verdicts(results, bound, count))
               for count, results in runs.items()]
    for count, text, verdict in reports:
        print(f"\n{count} connections\n")
        print(text)
        print()
        print("\n".join(verdict))
    (out / "results.json").write_text(json.dumps(
        {"machine": info, "args": sys.argv[1:], "argon2": bound, "scenarios": args.scenarios,
         "connections": args.connections, "duration": args.duration, "label": args.label,
         "client": args.client, "section": args.section,
         "runs": {str(c): {n: {s: r.as_dict() for s, r in rs.items()} for n, rs in results.items()}
                  for c, results in runs.items()}}, indent=1))
    if not args.no_record:
        write_results(args.results, args, reports, info, runs, sys.argv[1:])
        log(f"wrote {args.results}")
    return 0


def connection_counts(value: str) -> list[int]:
    """``--connections 16`` or ``16,64,256`` (issue 12: the same run at each count)."""
    counts = [int(v) for v in str(value).split(",") if v.strip()]
    if not counts or any(c < 1 or c > 4096 for c in counts):
        raise SystemExit("--connections: one or more counts between 1 and 4096, comma-separated")
    return counts


def render(args: argparse.Namespace) -> int:
    """Rewrite RESULTS.md from a run's results.json (e.g. after changing the report code)."""
    data = json.loads((Path(args.render) / "results.json").read_text())
    # Runs recorded before issue 12 hold one connection count under "results".
    raw = data.get("runs") or {str(data["connections"]): data["results"]}
    runs = {int(c): {n: {s: Result(**r) for s, r in rs.items()} for n, rs in results.items()}
            for c, results in raw.items()}
    args.connections, args.duration = str(data["connections"]), data["duration"]
    args.label = args.label or data["label"]
    args.client = data.get("client", "wrk")
    args.section = args.section or data.get("section", "")
    reports = [(c, table(results, data["scenarios"]), verdicts(results, data["argon2"], c))
               for c, results in runs.items()]
    write_results(args.results, args, reports, data["machine"], runs, data["args"])
    log(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        # Everything started was stopped and dropped on the way out (ExitStack).
        print(f"interrupted ({exc or 'Ctrl-C'}); servers stopped, database dropped", file=sys.stderr)
        sys.exit(130)
