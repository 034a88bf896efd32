"""Missing signing keys are a server fault, not a missing resource (issue 11, defect 4):
/token answers 503 with an OAuth error body and Retry-After, /readyz reports it, the log
says what to run; and the first start on a database without keys creates them (once,
audited), as `db upgrade` creates the schema."""

from __future__ import annotations

import logging

from sqlalchemy import delete, func, select

from common.db import db
from common.models import AuditEvent
from config.app import create_app
from idp.models import SigningKey
from tests.conftest import make_settings
from tests.helpers import Browser


def _drop_keys(app) -> None:
    db.session.execute(delete(SigningKey))
    db.session.commit()
    app.extensions["yiwang.provider"].key_cache.invalidate()


def test_token_without_signing_keys_is_503_temporarily_unavailable(app, http, oauth_client, user, caplog):
    query, verifier = Browser(http).code_flow(oauth_client, user)
    _drop_keys(app)
    with caplog.at_level(logging.ERROR):
        resp = http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                         "redirect_uri": oauth_client.redirect_uri, "code_verifier": verifier},
                         auth=oauth_client.auth)
    assert resp.status_code == 503
    assert resp.get_json()["error"] == "temporarily_unavailable"
    assert resp.headers["Retry-After"] and resp.headers["Cache-Control"] == "no-store"
    assert any("keys ensure" in r.getMessage() for r in caplog.records)
    ready = http.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["checks"]["signing_keys"] is False


def test_readyz_reports_signing_keys(http):
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["checks"]["signing_keys"] is True


def test_first_start_creates_the_keys_once(tmp_path, fresh_database, store, clock, password_hasher):
    settings = make_settings(tmp_path, fresh_database, create_keys_on_start=True)
    first = create_app(settings, store=store, clock=clock, passwords=password_hasher)
    with first.app_context():
        assert db.session.scalar(select(func.count()).select_from(SigningKey)) == 4  # active + next, ES256 + RS256
        created = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.keys.ensure")))
        assert len(created) == 1 and created[0].actor == "system"
        db.session.remove()
    second = create_app(settings, store=store, clock=clock, passwords=password_hasher)
    with second.app_context():
        assert db.session.scalar(select(func.count()).select_from(SigningKey)) == 4
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "admin.keys.ensure")) == 1
        db.session.remove()
        db.engine.dispose()
    with first.app_context():
        db.engine.dispose()


def test_start_before_the_schema_exists_does_not_fail(tmp_path, store, clock, password_hasher):
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'empty.sqlite3'}", create_keys_on_start=True)
    app = create_app(settings, store=store, clock=clock, passwords=password_hasher)
    with app.app_context():
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        db.engine.dispose()
