"""Shared fixtures: real PostgreSQL and Redis (the suite fails, never skips, when they
are missing), one migrated database per test session and worker, a transaction rolled
back after every test, a Redis key prefix per test, and an injected clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session, sessionmaker

from common.clock import FrozenClock
from common.db import db
from common.store import RedisStore
from config.app import create_app
from config.settings import Settings
from idp.passwords import PasswordHasher

from .helpers import IsolatedClient, RegisteredTestClient, TestUser, migrate_database

if TYPE_CHECKING:
    from .support.gm_pki import GmPki

PG_ADMIN_URL = os.environ.get("YIWANG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("YIWANG_TEST_REDIS", "redis://127.0.0.1:6379/0")
ISSUER = "http://127.0.0.1:5000"


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}".replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database for this test session; tests that need committed data in
    other processes clone it (``fresh_database``)."""
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - environment failure
        pytest.fail(f"PostgreSQL is required for the test suite ({PG_ADMIN_URL}): {exc}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"yiwang_test_{worker}_{os.getpid()}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    url = _pg_url(name)
    migrate_database(url)
    yield url
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def fresh_database(pg_template: str) -> Iterator[str]:
    """A new, migrated, empty PostgreSQL database (cloned from the template)."""
    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    template = pg_template.rsplit("/", 1)[1]
    name = f"yiwang_live_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _pg_url(name)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:  # pragma: no cover - environment failure
        pytest.fail(f"Redis is required for the test suite ({REDIS_URL}): {exc}")
    return REDIS_URL


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    s = RedisStore(redis_url, prefix=f"yiwang-test:{uuid.uuid4().hex}:")
    yield s
    s.flush_prefix()
    s.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture(scope="session")
def password_hasher() -> PasswordHasher:
    return PasswordHasher()


def make_settings(tmp_path: Path, database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "development",
        "issuer": ISSUER,
        "secret_key": "test-secret-key-" + "x" * 32,
        "index_key": "dGVzdC1pbmRleC1rZXktdGVzdC1pbmRleC1rZXktMzI",
        "data_keys": "t1:dGVzdC1kYXRhLWtleS10ZXN0LWRhdGEta2V5LTMyYnk",
        "database_url": database_url,
        "instance_path": tmp_path / "instance",
        # The app fixture creates the keys inside each test's transaction instead.
        "create_keys_on_start": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, pg_template: str) -> Settings:
    return make_settings(tmp_path, pg_template)


@pytest.fixture
def app(settings: Settings, store: RedisStore, clock: FrozenClock, password_hasher: PasswordHasher) -> Iterator[Flask]:
    application = create_app(settings, store=store, clock=clock, passwords=password_hasher)
    application.test_client_class = IsolatedClient
    with application.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        # Every commit in the code under test becomes a savepoint of this transaction,
        # rolled back after the test (Warehouse-style isolation).
        # Plain SQLAlchemy Session: Flask-SQLAlchemy's own picks the engine per model and
        # would ignore the connection bind.
        db.session = scoped_session(sessionmaker(bind=connection, join_transaction_mode="create_savepoint"))
        try:
            application.extensions["yiwang.provider"].services(db.session).keys.ensure_keys()
            db.session.commit()
            yield application
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()
            db.engine.dispose()


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def services(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["yiwang.provider"].services(db.session)


@pytest.fixture
def oauth_client(services) -> RegisteredTestClient:  # type: ignore[no-untyped-def]
    row, secret = services.clients.create(
        name="Test Portal",
        redirect_uris=["https://portal.example.test/callback"],
        post_logout_redirect_uris=["https://portal.example.test/logged-out"],
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scopes=["openid", "profile", "phone", "offline_access"],
    )
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, "https://portal.example.test/callback")


@pytest.fixture
def public_client(services) -> RegisteredTestClient:  # type: ignore[no-untyped-def]
    row, _ = services.clients.create(
        name="Public App", redirect_uris=["http://127.0.0.1:8765/cb"], public=True, scopes=["openid", "profile"]
    )
    db.session.commit()
    return RegisteredTestClient(row.client_id, None, "http://127.0.0.1:8765/cb")


@pytest.fixture
def user(services) -> TestUser:  # type: ignore[no-untyped-def]
    services.accounts.create(username="alice", password="correct horse battery", name="张三", phone="13800138000")
    db.session.commit()
    return TestUser("alice", "correct horse battery")


@pytest.fixture
def other_user(services) -> TestUser:  # type: ignore[no-untyped-def]
    services.accounts.create(username="bob", password="another fine passphrase")
    db.session.commit()
    return TestUser("bob", "another fine passphrase")


@pytest.fixture
def live_idp(fresh_database: str, redis_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A gunicorn-served IdP on a free loopback port (issuer http://127.0.0.1:PORT) with
    its own database and Redis prefix. ``live_idp.cli(...)`` runs operator commands."""
    from .live import free_port, prepare_live_idp

    port = free_port()
    idp = prepare_live_idp(fresh_database, redis_url, tmp_path, port)
    idp.base_url = idp.start_instance(port, tmp_path)  # type: ignore[attr-defined]
    yield idp
    idp.stop()
    import redis as _redis

    r = _redis.Redis.from_url(redis_url)
    for key in r.scan_iter(match=idp.env["YIWANG_REDIS_PREFIX"] + "*"):
        r.delete(key)
    r.close()


@pytest.fixture(scope="session")
def gm_pki(tmp_path_factory: pytest.TempPathFactory) -> GmPki:
    """The SM2/RSA/ECDSA provincial PKI made by OpenSSL 3's command line (issue 10), once
    per run: tests/support/gm_pki.py."""
    from tests.support.gm_pki import build_gm_pki

    return build_gm_pki(tmp_path_factory.mktemp("gm-pki"))
