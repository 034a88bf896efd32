"""Helpers for the userinfo, introspection, revocation, logout, session, throttling and
operations tests: bearer calls, prompt=none probes, client registration, a real loopback
receiver for back-channel logout tokens, a real loopback server of documents (sector
identifier URIs), and page helpers."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from flask.testing import FlaskClient

from common.db import db
from tests.helpers import Browser, RegisteredTestClient, form_field, pkce_pair, query_of

ISSUER = "http://127.0.0.1:5000"
SSO_COOKIE = "yiwang_sso"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_client(services: Any, *, name: str = "Second Portal",
                    redirect_uri: str = "https://second.example.test/cb", **kw: Any) -> RegisteredTestClient:
    """Register a confidential client (or a public one with ``public=True``) and commit."""
    kw.setdefault("scopes", ["openid", "profile", "phone", "offline_access"])
    row, secret = services.clients.create(name=name, redirect_uris=[redirect_uri], **kw)
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, redirect_uri)


def prompt_none(http: FlaskClient, client: RegisteredTestClient, **extra: str) -> dict[str, str]:
    """A silent authorization request (OIDC Core §3.1.2.1 prompt=none); returns the
    parameters of the redirect back to the client."""
    _, challenge = pkce_pair()
    resp = Browser(http).authorize(client, challenge=challenge, prompt="none", **extra)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    location = resp.headers["Location"]
    assert location.startswith(client.redirect_uri), location
    return query_of(location)


def sso_cookie_value(http: FlaskClient, name: str = SSO_COOKIE) -> str | None:
    cookie = http.get_cookie(name)
    return cookie.value if cookie is not None else None


def set_cookie_header(resp: Any, name: str) -> str | None:
    for value in resp.headers.getlist("Set-Cookie"):
        if value.startswith(name + "="):
            return str(value)
    return None


def csrf_of(page: Any) -> str:
    return form_field(page.get_data(as_text=True), "csrf_token")


def iframe_sources(page: Any) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'<iframe src="([^"]+)"', page.get_data(as_text=True))]


def query_params(url: str) -> dict[str, list[str]]:
    return parse_qs(url.split("?", 1)[1]) if "?" in url else {}


# -- a real back-channel logout receiver ------------------------------------------------


@dataclass
class Receiver:
    """What a relying party's back-channel logout endpoint received."""

    url: str
    status: int = 200
    location: str | None = None  # sent as Location (with a 3xx status: a redirect)
    posts: list[dict[str, Any]] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def logout_tokens(self) -> list[str]:
        with self.lock:
            return [p["form"]["logout_token"][0] for p in self.posts if "logout_token" in p["form"]]


@contextmanager
def backchannel_receiver(status: int = 200) -> Iterator[Receiver]:
    """An HTTP server on a free loopback port, in a thread, that records every POST
    (headers and form body) and answers ``receiver.status``."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            with receiver.lock:
                receiver.posts.append({
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "form": parse_qs(body),
                })
                status, location = receiver.status, receiver.location
            self.send_response(status)
            self.send_header("Cache-Control", "no-store")
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            with receiver.lock:
                receiver.gets.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server API
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/backchannel-logout"
    receiver.status = status
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class DocumentServer:
    """Documents served on a loopback port: ``routes[path] = (status, body)``; ``hits``
    counts the GETs per path."""

    base: str = ""
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    def serve_json(self, path: str, value: Any, status: int = 200) -> str:
        self.routes[path] = (status, json.dumps(value).encode())
        return self.url(path)


@contextmanager
def document_server() -> Iterator[DocumentServer]:
    """A real HTTP server on a free loopback port, in a thread, answering GET from
    ``routes`` (404 otherwise)."""
    docs = DocumentServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            docs.hits[self.path] = docs.hits.get(self.path, 0) + 1
            status, body = docs.routes.get(self.path, (404, b""))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server API
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    docs.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield docs
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- one application context per request ----------------------------------------------


class IsolatedClient(FlaskClient):
    """The conftest ``app`` fixture keeps an application context pushed for the whole
    test, and Flask reuses a pushed context for the requests of the test client, so ``g``
    (CSP additions, log extras, cached services) would leak from one request into the
    next. Production gets a fresh context per request; this client restores that."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


def isolate_requests(app: Any) -> None:
    app.test_client_class = IsolatedClient
