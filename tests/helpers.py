"""Test helpers: a scripted browser over Flask's test client, PKCE, token decoding."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet


@dataclass
class RegisteredTestClient:
    client_id: str
    secret: str | None
    redirect_uri: str

    @property
    def auth(self) -> tuple[str, str]:
        assert self.secret is not None
        return (self.client_id, self.secret)


@dataclass
class TestUser:
    username: str
    password: str


def migrate_database(url: str) -> None:
    """Build the schema with the Alembic migrations, as production does."""
    import tempfile
    from pathlib import Path

    from flask_migrate import upgrade

    from config.app import create_app
    from config.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(database_url=url, instance_path=Path(tmp)))  # type: ignore[call-arg]
        with app.app_context():
            upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
            from common.db import db

            db.engine.dispose()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def checked_claims(html: str) -> list[str]:
    """The claim checkboxes a consent page shows ticked."""
    out = []
    for tag in re.findall(r"<input[^>]*>", html):
        if 'name="claim"' in tag and " checked" in tag:
            match = re.search(r'value="([^"]*)"', tag)
            if match:
                out.append(match.group(1))
    return out


def form_field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no field {name}"
    return m.group(1)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def decode_unverified(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    import json

    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def verify_jwt(http: FlaskClient, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = KeySet.import_key_set(http.get("/jwks.json").get_json())
    parsed = jwt.decode(token, keys, algorithms=["ES256", "RS256"])
    return dict(parsed.header), dict(parsed.claims)


SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")


def assert_security_headers(resp: Any) -> None:
    for name in SECURITY_HEADERS:
        assert name in resp.headers, name
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"


@dataclass
class Browser:
    """Drives the login/consent pages through the Flask test client."""

    http: FlaskClient
    history: list[Any] = field(default_factory=list)

    def authorize(self, client: RegisteredTestClient, *, scope: str = "openid profile", state: str = "st-1",
                  nonce: str | None = "n-1", challenge: str | None = None, method: str | None = "S256",
                  **extra: str) -> Any:
        params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
                  "scope": scope, "state": state}
        if nonce is not None:
            params["nonce"] = nonce
        if challenge is not None:
            params["code_challenge"] = challenge
        if method is not None:
            params["code_challenge_method"] = method
        params.update(extra)
        params = {k: v for k, v in params.items() if v is not None}
        resp = self.http.get("/authorize", query_string=params)
        self.history.append(resp)
        return resp

    def follow(self, resp: Any) -> Any:
        location = resp.headers["Location"]
        parts = urlsplit(location)
        if parts.netloc and parts.netloc != "127.0.0.1:5000":
            raise AssertionError(f"not a local redirect: {location}")
        nxt = self.http.get(location)
        self.history.append(nxt)
        return nxt

    def login(self, page: Any, user: TestUser) -> Any:
        html = page.get_data(as_text=True)
        resp = self.http.post("/login", data={
            "csrf_token": form_field(html, "csrf_token"),
            "interaction": form_field(html, "interaction"),
            "identifier": user.username,
            "password": user.password,
        })
        self.history.append(resp)
        return resp

    def consent(self, page: Any, decision: str = "allow", *, untick: set[str] | frozenset[str] = frozenset(),
                tick: set[str] | frozenset[str] = frozenset(), confirm_sensitive: bool = False) -> Any:
        """Submit the consent form as a browser would: the checkboxes ticked on the page
        (plus ``tick``, minus ``untick``), the sensitive-claims confirmation only when
        asked to."""
        html = page.get_data(as_text=True)
        data: dict[str, Any] = {
            "csrf_token": form_field(html, "csrf_token"),
            "interaction": form_field(html, "interaction"),
            "decision": decision,
            "claim": sorted((set(checked_claims(html)) | set(tick)) - set(untick)),
        }
        if confirm_sensitive:
            data["sensitive_confirm"] = "yes"
        resp = self.http.post("/consent", data=data)
        self.history.append(resp)
        return resp

    def code_flow(self, client: RegisteredTestClient, user: TestUser | None, **kw: Any) -> tuple[dict[str, str], str]:
        """Run the whole front channel; returns (redirect query, code_verifier)."""
        verifier, challenge = pkce_pair()
        resp = self.authorize(client, challenge=challenge, **kw)
        for _ in range(8):
            assert resp.status_code in (302, 303, 200), resp.status_code
            if resp.status_code == 200:
                html = resp.get_data(as_text=True)
                if 'name="password"' in html:
                    assert user is not None
                    resp = self.login(resp, user)
                elif 'name="decision"' in html:
                    resp = self.consent(resp)
                else:
                    raise AssertionError(html[:500])
                continue
            location = resp.headers["Location"]
            if location.startswith(client.redirect_uri):
                return query_of(location), verifier
            resp = self.follow(resp)
        raise AssertionError("too many steps")

    def tokens(self, client: RegisteredTestClient, user: TestUser | None, **kw: Any) -> dict[str, Any]:
        query, verifier = self.code_flow(client, user, **kw)
        data = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": client.redirect_uri,
                "code_verifier": verifier}
        if client.secret is None:
            data["client_id"] = client.client_id
            resp = self.http.post("/token", data=data)
        else:
            resp = self.http.post("/token", data=data, auth=client.auth)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()  # type: ignore[no-any-return]


class IsolatedClient(FlaskClient):
    """The ``app`` fixture keeps an application context pushed for the whole test, and
    Flask reuses a pushed context for the test client's requests, so ``g`` (CSP
    additions, log extras, cached services) would leak from one request into the next.
    Production gets a fresh context per request; this client restores that."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)
