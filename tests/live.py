"""Real IdP processes for tests that need them (browser, interop, multi-instance):
gunicorn on a free loopback port, its own migrated PostgreSQL database and Redis prefix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def idp_env(database_url: str, redis_url: str, issuer: str, instance: Path, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YIWANG_")}
    env.update(
        {
            "YIWANG_ENV": "development",
            "YIWANG_ISSUER": issuer,
            "YIWANG_SECRET_KEY": "live-test-secret-key-" + "s" * 32,
            "YIWANG_INDEX_KEY": "bGl2ZS10ZXN0LWluZGV4LWtleS1saXZlLXRlc3QtMzI",
            "YIWANG_DATA_KEYS": "k1:bGl2ZS10ZXN0LWRhdGEta2V5LWxpdmUtdGVzdC0zMmI",
            "YIWANG_DATABASE_URL": database_url,
            "YIWANG_REDIS_URL": redis_url,
            "YIWANG_REDIS_PREFIX": prefix,
            "YIWANG_INSTANCE_PATH": str(instance),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


@dataclass
class LiveIdp:
    """One or more gunicorn instances sharing one database and one Redis prefix."""

    env: dict[str, str]
    issuer: str
    ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def cli(self, *args: str) -> dict[str, Any] | list[Any]:
        """Run ``flask --app wsgi ARGS --json`` against this IdP's database."""
        out = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args, "--json"],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed: {out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def start_instance(self, port: int, log_dir: Path, workers: int = 1) -> str:
        log = log_dir / f"idp-{port}.log"
        env = dict(self.env, YIWANG_BIND=f"127.0.0.1:{port}", YIWANG_WORKERS=str(workers))
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"), "wsgi:app"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        self.ports.append(port)
        self.logs.append(log)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {log.read_text()[-3000:]}")
            try:
                if requests.get(base + "/readyz", timeout=1).status_code == 200:
                    return base
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not become ready: {log.read_text()[-3000:]}")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def prepare_live_idp(database_url: str, redis_url: str, tmp: Path, port: int | None = None) -> LiveIdp:
    port = port or free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = idp_env(database_url, redis_url, issuer, tmp / "instance", f"yiwang-live:{uuid.uuid4().hex}:")
    idp = LiveIdp(env=env, issuer=issuer)
    idp.cli("keys", "ensure")
    return idp
