"""SSO sessions through HTTP: idle and absolute timeouts (OWASP ASVS 5 §7.3), the
session cookie's attributes (RFC 6265bis §4.1.2, §4.1.3.2 ``__Host-`` prefix), and a
new session at every login (ASVS 5 §7.2.4)."""

from __future__ import annotations

import re

import pytest

from common.db import db
from config.app import create_app
from tests.conftest import make_settings
from tests.helpers import Browser

from ._support import SSO_COOKIE, csrf_of, prompt_none, set_cookie_header, sso_cookie_value

IDLE = 1800
ABSOLUTE = 43200


@pytest.fixture
def signed_in(http, oauth_client, user):
    Browser(http).tokens(oauth_client, user)
    assert "code" in prompt_none(http, oauth_client)


def test_idle_timeout_ends_the_session(http, oauth_client, signed_in, clock):
    clock.advance(IDLE - 60)
    # Still within the idle window: silent authentication works (and refreshes it).
    assert "code" in prompt_none(http, oauth_client)
    clock.advance(IDLE - 60)
    assert "code" in prompt_none(http, oauth_client)
    clock.advance(IDLE + 1)
    # OIDC Core §3.1.2.6: no session → login_required; ASVS 5 §7.3.1 idle timeout.
    assert prompt_none(http, oauth_client)["error"] == "login_required"


def test_absolute_timeout_ends_an_active_session(http, oauth_client, signed_in, clock):
    # Keep the session busy (never idle) until the absolute limit: ASVS 5 §7.3.2.
    elapsed = 0
    step = IDLE - 300
    while elapsed + step < ABSOLUTE:
        clock.advance(step)
        elapsed += step
        assert "code" in prompt_none(http, oauth_client), elapsed
    clock.advance(ABSOLUTE - elapsed)
    assert prompt_none(http, oauth_client)["error"] == "login_required"


def test_session_ends_when_account_is_locked(http, oauth_client, signed_in, services):
    services.accounts.set_status(services.accounts.get_by_username("alice"), "locked")
    db.session.commit()
    assert prompt_none(http, oauth_client)["error"] == "login_required"


def _login_response(http, username, password, base_url=None):
    kw = {"base_url": base_url} if base_url else {}
    page = http.get("/login", **kw)
    assert page.status_code == 200
    resp = http.post("/login", data={"csrf_token": csrf_of(page), "interaction": "", "identifier": username,
                                     "password": password}, **kw)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    return resp


def _attributes(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        out[name.lower()] = value
    return out


def test_cookie_attributes_on_loopback_http(http, user):
    resp = _login_response(http, "alice", "correct horse battery")
    header = set_cookie_header(resp, SSO_COOKIE)
    assert header is not None
    attrs = _attributes(header)
    # RFC 6265bis §4.1.2.6 HttpOnly (no script access), §4.1.2.7 SameSite=Lax, §4.1.2.4 Path=/.
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs  # host-only
    # Deviation: no Secure flag only because the test issuer is http://127.0.0.1
    # (Settings.secure_cookies); the https case is below.
    assert "secure" not in attrs
    # No persistent cookie: the server-side session carries the timeouts.
    assert "expires" not in attrs and "max-age" not in attrs


def test_https_issuer_uses_host_prefixed_secure_cookie(tmp_path, fresh_database, store, clock, password_hasher):
    settings = make_settings(tmp_path, fresh_database, issuer="https://idp.example.test")
    application = create_app(settings, store=store, clock=clock, passwords=password_hasher)
    base = "https://idp.example.test"
    try:
        with application.app_context():
            svc = application.extensions["yiwang.provider"].services(db.session)
            svc.keys.ensure_keys()
            svc.accounts.create(username="carol", password="a long enough secret")
            db.session.commit()
        http = application.test_client()
        resp = _login_response(http, "carol", "a long enough secret", base_url=base)
        header = set_cookie_header(resp, "__Host-yiwang_sso")
        # RFC 6265bis §4.1.3.2: __Host- cookies are Secure, Path=/ and have no Domain.
        assert header is not None, resp.headers.getlist("Set-Cookie")
        attrs = _attributes(header)
        assert "secure" in attrs and "httponly" in attrs
        assert attrs["path"] == "/" and "domain" not in attrs
        assert attrs["samesite"] == "Lax"
        assert set_cookie_header(resp, SSO_COOKIE) is None
        # The UI (CSRF) cookie is __Host- prefixed and Secure as well.
        ui = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("__Host-yiwang_ui="))
        assert "Secure" in ui
        # HSTS on https (SECURITY.md "Pages and sessions").
        assert "max-age=" in resp.headers["Strict-Transport-Security"]
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def test_new_session_at_every_login(http, user):
    first = _login_response(http, "alice", "correct horse battery")
    first_value = re.match(rf"{SSO_COOKIE}=([^;]+)", set_cookie_header(first, SSO_COOKIE) or "")
    second = _login_response(http, "alice", "correct horse battery")
    second_value = re.match(rf"{SSO_COOKIE}=([^;]+)", set_cookie_header(second, SSO_COOKIE) or "")
    assert first_value and second_value
    # ASVS 5 §7.2.4: a new session token at authentication (no fixation) …
    assert first_value.group(1) != second_value.group(1)
    assert sso_cookie_value(http) == second_value.group(1)


def test_old_session_cookie_dies_at_relogin(http, oauth_client, user):
    Browser(http).tokens(oauth_client, user)
    old = sso_cookie_value(http)
    assert old is not None
    _login_response(http, "alice", "correct horse battery")
    # … and the previous one is ended, not merely replaced in this browser.
    http.set_cookie(SSO_COOKIE, old)
    assert prompt_none(http, oauth_client)["error"] == "login_required"


def test_session_fixation_value_is_ignored(http, oauth_client, user):
    # A cookie value planted before login never becomes a session.
    http.set_cookie(SSO_COOKIE, "attacker-chosen-value")
    Browser(http).tokens(oauth_client, user)
    assert sso_cookie_value(http) != "attacker-chosen-value"
    http.set_cookie(SSO_COOKIE, "attacker-chosen-value")
    assert prompt_none(http, oauth_client)["error"] == "login_required"
