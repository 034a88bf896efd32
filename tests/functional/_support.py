"""Helpers for the userinfo, introspection, revocation, logout, session, throttling,
operations and certificate login tests: bearer calls, prompt=none probes, client
registration, a real loopback receiver for back-channel logout tokens, a real loopback
server of documents (sector identifier URIs), page helpers, and the holder's side of
certificate login (issues 4 and 10)."""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from certificates.proof import signed_bytes
from common.db import db
from common.models import AuditEvent
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


# -- certificate login: the holder's side (issues 4 and 10) -----------------------------


class CertificateHolder(Protocol):
    """What a legal person pastes into /login/certificate: its certificate (PEM), the
    intermediates (PEM, may be empty) and its signature of the challenge (base64)."""

    @property
    def certificate(self) -> str: ...

    @property
    def chain(self) -> str: ...

    def sign(self, challenge: str) -> str: ...


def pem(cert: Any) -> str:
    return str(cert.public_bytes(serialization.Encoding.PEM).decode())


@dataclass
class EcdsaHolder:
    """A tests.support.pki leaf (P-256 key): ECDSA with SHA-256, DER (RFC 3279 §2.2.3)."""

    certificate: str
    key: ec.EllipticCurvePrivateKey
    chain: str = ""

    def sign(self, challenge: str) -> str:
        return base64.b64encode(self.key.sign(signed_bytes(challenge), ec.ECDSA(hashes.SHA256()))).decode()


def holder_of(leaf: Any, *, key: ec.EllipticCurvePrivateKey | None = None,
              certificate: str | None = None) -> EcdsaHolder:
    """The holder of a tests.support.pki ``Leaf``; ``key`` signs instead of the leaf's own
    (a wrong proof of possession), ``certificate`` is pasted instead of the leaf's."""
    return EcdsaHolder(certificate if certificate is not None else pem(leaf.cert), key or leaf.key)


_CHALLENGE = re.compile(r'<pre id="challenge">([^<]+)</pre>')


def page_challenge(page_html: str) -> str:
    match = _CHALLENGE.search(page_html)
    assert match is not None, page_html[:500]
    return match.group(1)


def certificate_login(http: FlaskClient, who: Any, *, interaction: str = "", challenge: str | None = None,
                      lang: str | None = None, **holder: Any) -> Any:
    """Open the certificate login page (with ``lang``, as its language link does), sign
    its challenge (or ``challenge``) and submit; the response to the POST. ``who`` is a
    ``CertificateHolder`` or a tests.support.pki ``Leaf`` (``holder_of(who, **holder)``)."""
    if not hasattr(who, "sign"):
        who = holder_of(who, **holder)
    query = {k: v for k, v in (("interaction", interaction), ("lang", lang)) if v}
    page_html = http.get("/login/certificate", query_string=query or None).get_data(as_text=True)
    challenge = challenge or page_challenge(page_html)
    data = {"csrf_token": form_field(page_html, "csrf_token"), "interaction": interaction, "challenge": challenge,
            "certificate": who.certificate, "chain": who.chain, "signature": who.sign(challenge)}
    if lang:
        data["lang"] = lang
    return http.post("/login/certificate", data=data)


def authorize_with_certificate(http: FlaskClient, client: RegisteredTestClient, who: Any,
                               **extra: str) -> dict[str, Any]:
    """The code flow (with PKCE) for the legal_person scope, logged in with ``who``'s
    certificate, consenting when asked; the token response."""
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
              "scope": "openid legal_person", "state": "s", "nonce": "n", "code_challenge": challenge,
              "code_challenge_method": "S256", **extra}
    resp = http.get("/authorize", query_string=params)
    iid = query_of(resp.headers["Location"])["interaction"]
    resp = certificate_login(http, who, interaction=iid)
    assert resp.status_code == 303, resp.get_data(as_text=True)[-600:]
    resp = http.get(resp.headers["Location"])
    location = resp.headers["Location"]
    if location.startswith("/consent"):
        resp = Browser(http).consent(http.get(location))
        location = http.get(resp.headers["Location"]).headers["Location"]
    code = query_of(location)["code"]
    tokens = http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": client.redirect_uri, "code_verifier": verifier},
                       auth=client.auth)
    assert tokens.status_code == 200, tokens.get_json()
    return tokens.get_json()  # type: ignore[no-any-return]


def form_error(resp: Any) -> str:
    """The refusal shown on the page (``#form-error``), unescaped."""
    match = re.search(r'<p class="error" role="alert" id="form-error">([^<]*)</p>', resp.get_data(as_text=True))
    assert match is not None, resp.get_data(as_text=True)[-600:]
    return html.unescape(match.group(1))


def certificate_rejections() -> list[AuditEvent]:
    """The ``certificate.rejected`` audit events written so far, oldest first."""
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "certificate.rejected")
                                   .order_by(AuditEvent.id)))


def mtls_app(settings: Any, store: Any, clock: Any, password_hasher: Any, tmp_path: Path) -> Flask:
    """A second app on the same database in mTLS header mode: the client certificate comes
    in ``X-SSL-Client-Cert`` (URL-encoded PEM, leaf first) from the proxy at 127.0.0.1."""
    from config.app import create_app
    from tests.conftest import make_settings
    from tests.helpers import IsolatedClient

    mtls_settings = make_settings(tmp_path, settings.database_url, client_cert_header="X-SSL-Client-Cert",
                                  client_cert_proxies="127.0.0.1")
    mtls = create_app(mtls_settings, store=store, clock=clock, passwords=password_hasher)
    mtls.test_client_class = IsolatedClient
    return mtls
