"""SMS senders for one-time codes: ``console`` (development: the message goes to the
log, which is the point of it) and ``http`` (a JSON gateway, requests signed with
HMAC-SHA-256 like the registry adapter). Production refuses ``console``."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Protocol

log = logging.getLogger("yiwang.sms")


class SmsSender(Protocol):
    name: str

    def send(self, phone: str, text: str) -> bool: ...


class ConsoleSender:
    """Development only: writes the message (with the code) to the log."""

    name = "console"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str) -> bool:
        self.sent.append((phone, text))
        if len(self.sent) > 100:
            del self.sent[:50]
        # Deliberate: this sender exists to show the code on a developer's console.
        log.warning("DEVELOPMENT SMS to %s: %s", phone[:3] + "****" + phone[-4:], text)
        return True


class HttpSmsSender:
    name = "http"

    def __init__(self, url: str, key: bytes, timeout: float = 3.0) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("the SMS gateway URL must be http(s)")
        self._url = url
        self._key = key
        self._timeout = timeout

    def send(self, phone: str, text: str) -> bool:
        body = json.dumps({"phone": phone, "text": text}, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        sig = hmac.new(self._key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(  # noqa: S310 - configured http(s) URL only
            self._url, data=body, method="POST",
            headers={"Content-Type": "application/json", "X-Yiwang-Timestamp": ts, "X-Yiwang-Signature": sig},
        )
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                return 200 <= resp.status < 300
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            log.warning("sms gateway failed", extra={"error": type(exc).__name__})
            return False
