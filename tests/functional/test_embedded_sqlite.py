"""The embedded default (DESIGN.md §3): a SQLite file in the instance folder, built by
the Alembic migrations, and the in-process store; the main flows work with no server
installed — code flow, refresh, userinfo, introspection, revocation, logout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from common.db import db
from common.store import MemoryStore
from config.app import create_app
from tests import helpers
from tests.conftest import make_settings
from tests.helpers import Browser, RegisteredTestClient, migrate_database, verify_jwt

from ._support import bearer, prompt_none

PLR = "https://portal.example.test/logged-out"


@pytest.fixture
def embedded(tmp_path, clock, password_hasher) -> Iterator[tuple[Flask, RegisteredTestClient, helpers.TestUser]]:
    settings = make_settings(tmp_path, None)
    url = settings.resolved_database_url()
    assert url.startswith("sqlite:///") and url.endswith("instance/yiwang.sqlite3")
    # As `scripts/run` does: the app (which creates the instance folder), then the migrations.
    application = create_app(settings, store=MemoryStore(clock), clock=clock, passwords=password_hasher)
    migrate_database(url)
    try:
        with application.app_context():
            svc = application.extensions["yiwang.provider"].services(db.session)
            svc.keys.ensure_keys()
            row, secret = svc.clients.create(
                name="Embedded Portal",
                redirect_uris=["https://portal.example.test/callback"],
                post_logout_redirect_uris=[PLR],
                scopes=["openid", "profile", "phone", "offline_access"],
            )
            svc.accounts.create(username="alice", password="correct horse battery", name="张三",
                                phone="13800138000")
            db.session.commit()
            client = RegisteredTestClient(row.client_id, secret, "https://portal.example.test/callback")
        yield application, client, helpers.TestUser("alice", "correct horse battery")
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def test_database_is_a_sqlite_file(embedded, tmp_path):
    application, _, _ = embedded
    assert (tmp_path / "instance" / "yiwang.sqlite3").is_file()
    with application.app_context():
        assert db.engine.dialect.name == "sqlite"
    resp = application.test_client().get("/readyz")
    assert resp.status_code == 200 and resp.get_json()["checks"] == {"database": True, "store": True,
                                                                     "signing_keys": True}


def test_main_flows(embedded, clock):
    application, client, user = embedded
    http = application.test_client()
    browser = Browser(http)
    tokens = browser.tokens(client, user, scope="openid profile phone offline_access", nonce="n-embedded")
    _, id_claims = verify_jwt(http, tokens["id_token"])
    assert id_claims["nonce"] == "n-embedded" and id_claims["aud"] == client.client_id

    # OIDC Core §5.3 userinfo.
    info = http.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert info["sub"] == id_claims["sub"]
    assert info["name"] == "张三" and info["phone_number"] == "+8613800138000"

    # RFC 6749 §6 refresh with rotation (RFC 9700 §4.14.2).
    refreshed = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=client.auth)
    assert refreshed.status_code == 200
    new = refreshed.get_json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert http.get("/userinfo", headers=bearer(new["access_token"])).status_code == 200
    reuse = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                      auth=client.auth)
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    # Reuse killed the family, including the newest tokens.
    assert http.get("/userinfo", headers=bearer(new["access_token"])).status_code == 401

    # SSO: a second authorization needs no login.
    second = browser.tokens(client, None, scope="openid profile offline_access")
    assert http.post("/introspect", data={"token": second["access_token"]}, auth=client.auth).get_json()["active"]
    assert http.post("/revoke", data={"token": second["refresh_token"]}, auth=client.auth).status_code == 200
    assert http.get("/userinfo", headers=bearer(second["access_token"])).status_code == 401

    # Expiry follows the injected clock in the in-process store too.
    third = browser.tokens(client, None)
    clock.advance(301)
    assert http.get("/userinfo", headers=bearer(third["access_token"])).status_code == 401

    # RP-initiated logout ends the session.
    resp = http.get("/logout", query_string={"id_token_hint": third["id_token"], "post_logout_redirect_uri": PLR,
                                             "state": "bye"})
    assert resp.status_code == 303 and resp.headers["Location"] == PLR + "?state=bye"
    assert prompt_none(http, client)["error"] == "login_required"


def test_code_is_single_use(embedded):
    application, client, user = embedded
    http = application.test_client()
    query, verifier = Browser(http).code_flow(client, user)
    data = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": client.redirect_uri,
            "code_verifier": verifier}
    assert http.post("/token", data=data, auth=client.auth).status_code == 200
    replay = http.post("/token", data=data, auth=client.auth)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"


def test_session_idle_timeout_by_clock(embedded, clock):
    application, client, user = embedded
    http = application.test_client()
    Browser(http).tokens(client, user)
    clock.advance(1801)
    assert prompt_none(http, client)["error"] == "login_required"


def test_several_workers_without_redis_are_refused(tmp_path):
    from config.settings import ConfigurationError

    with pytest.raises(ConfigurationError):
        create_app(make_settings(tmp_path, None, workers=2))
