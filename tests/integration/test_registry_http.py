"""The http registry adapter against a real HTTP server on loopback: signed requests,
slow, failing and malformed answers, retries and the circuit breaker."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from realname.registry import CircuitBreaker, HttpRegistry, HttpRegistryConfig, Outcome

KEY = b"registry-shared-key-for-tests-32b"


class FakeRegistry:
    """A real server; its behaviour is switched by the test (``mode``)."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls: list[dict[str, Any]] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ts = self.headers["X-Yiwang-Timestamp"]
                expected = hmac.new(KEY, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(expected, self.headers["X-Yiwang-Signature"])
                data = json.loads(body)
                registry.calls.append({"signed": signed, "key_id": self.headers["X-Yiwang-Key-Id"], **data})
                if not signed:
                    return self._send(401, b'{"error":"signature"}')
                if registry.mode == "slow":
                    time.sleep(1.5)
                if registry.mode == "fail":
                    return self._send(503, b"unavailable")
                if registry.mode == "malformed":
                    return self._send(200, b"<html>not json")
                if registry.mode == "weird":
                    return self._send(200, b'{"result": "maybe"}')
                result = "match" if data["name"] == "张三" else "mismatch"
                if data.get("phone") and data["phone"] != "13800138000":
                    result = "mismatch"
                self._send(200, json.dumps({"result": result}).encode())

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/verify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    yield server
    server.server.shutdown()
    server.server.server_close()


def adapter(url: str, **kw: Any) -> HttpRegistry:
    breaker = kw.pop("breaker", None)
    return HttpRegistry(HttpRegistryConfig(url=url, key_id="k1", key=KEY, **kw), breaker)


def test_signed_request_and_results(fake):
    reg = adapter(fake.url, timeout=2)
    assert reg.verify("张三", "11010519491231002X") is Outcome.MATCH
    assert reg.verify("李四", "11010519491231002X") is Outcome.MISMATCH
    assert reg.verify_phone("张三", "11010519491231002X", "13900000000") is Outcome.MISMATCH
    assert all(c["signed"] and c["key_id"] == "k1" for c in fake.calls)
    assert len({c["request_id"] for c in fake.calls}) == 3


def test_wrong_key_is_unavailable_not_a_match(fake):
    reg = HttpRegistry(HttpRegistryConfig(url=fake.url, key_id="k1", key=b"x" * 32, retries=2))
    assert reg.verify("张三", "11010519491231002X") is Outcome.UNAVAILABLE
    # A 4xx is not retried.
    assert len(fake.calls) == 1


@pytest.mark.parametrize("mode", ["fail", "malformed", "weird"])
def test_failures_are_unavailable_after_bounded_retries(fake, mode):
    fake.mode = mode
    reg = adapter(fake.url, timeout=2, retries=2)
    assert reg.verify("张三", "11010519491231002X") is Outcome.UNAVAILABLE
    assert len(fake.calls) == 3


def test_slow_registry_times_out(fake):
    fake.mode = "slow"
    reg = adapter(fake.url, timeout=0.3, retries=0)
    started = time.monotonic()
    assert reg.verify("张三", "11010519491231002X") is Outcome.UNAVAILABLE
    assert time.monotonic() - started < 1.4


def test_registry_down_is_unavailable():
    reg = adapter("http://127.0.0.1:1/verify", timeout=0.5, retries=1)
    assert reg.verify("张三", "11010519491231002X") is Outcome.UNAVAILABLE


def test_circuit_breaker_opens_and_recovers(fake):
    now = [1000.0]
    breaker = CircuitBreaker(threshold=2, cooldown=30, now=lambda: now[0])
    fake.mode = "fail"
    reg = adapter(fake.url, timeout=2, retries=0, breaker=breaker)
    assert reg.verify("张三", "11010519491231002X") is Outcome.UNAVAILABLE
    assert reg.verify("张三", "11010519491231002X") is Outcome.UNAVAILABLE
    assert breaker.open and len(fake.calls) == 2
    # Open: fails fast, the registry is not called.
    assert reg.verify("张三", "11010519491231002X") is Outcome.UNAVAILABLE
    assert len(fake.calls) == 2
    # After the cooldown one trial goes through; success closes the breaker.
    fake.mode = "ok"
    now[0] += 31
    assert reg.verify("张三", "11010519491231002X") is Outcome.MATCH
    assert not breaker.open and len(fake.calls) == 3
