"""The http SMS sender against a real gateway on loopback: signed JSON, failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from realname.sms import ConsoleSender, HttpSmsSender

KEY = b"sms-gateway-key-for-the-tests-32b"


def test_http_sender_signs_and_reports_failures():
    received = []
    status = [200]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ts = self.headers["X-Yiwang-Timestamp"]
            good = hmac.compare_digest(hmac.new(KEY, ts.encode() + b"." + body, hashlib.sha256).hexdigest(),
                                       self.headers["X-Yiwang-Signature"])
            received.append((good, json.loads(body)))
            self.send_response(status[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sender = HttpSmsSender(f"http://127.0.0.1:{server.server_address[1]}/send", KEY, timeout=2)
        assert sender.send("13800138000", "验证码 123456")
        assert received == [(True, {"phone": "13800138000", "text": "验证码 123456"})]
        status[0] = 500
        assert not sender.send("13800138000", "x")
    finally:
        server.shutdown()
        server.server_close()
    assert not HttpSmsSender("http://127.0.0.1:1/send", KEY, timeout=0.5).send("13800138000", "x")


def test_console_sender_masks_the_number_in_the_log(caplog):
    sender = ConsoleSender()
    with caplog.at_level("WARNING", logger="yiwang.sms"):
        assert sender.send("13800138000", "验证码 654321")
    assert "138****8000" in caplog.text and "13800138000" not in caplog.text
