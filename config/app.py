"""Composition root: build the Flask app from one ``Settings`` object."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_migrate import Migrate
from sqlalchemy import event, inspect, text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from admin import models as _admin_models  # noqa: F401  (tables for Alembic)
from certificates import models as _certificates_models  # noqa: F401  (tables for Alembic)
from common import models as _common_models  # noqa: F401  (audit tables for Alembic)
from common.clock import Clock, SystemClock
from common.crypto import FieldCipher, KeyedHasher
from common.db import configure_sqlite, db
from common.store import MemoryStore, RedisStore, Store
from common.versions import ChangeWatch
from idp.claim_sources import watch_claim_sources
from idp.clients import ClientCache, watch_clients
from idp.discovery import endpoint_urls
from idp.keys import KeyCache
from idp.passwords import PasswordHasher
from idp.provider import Provider
from idp.server import build_server, request_services
from realname import models as _realname_models  # noqa: F401  (tables for Alembic)

from .logging import configure_logging
from .metrics import PrometheusMetrics
from .settings import Settings

log = logging.getLogger("yiwang.app")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _current_store() -> Store | None:
    if not has_app_context():
        return None
    provider = current_app.extensions.get("yiwang.provider")
    return provider.store if isinstance(provider, Provider) else None


# Issue 12: commits that change a cached row (clients, what claims are computed from)
# give it a new version in the current app's store, so every instance's cache sees it.
_CHANGES = ChangeWatch(_current_store)
watch_claim_sources(_CHANGES)
watch_clients(_CHANGES)


# Any fixed number: the PostgreSQL advisory lock that lets one starting instance create
# the first signing keys while the others wait.
_KEYS_LOCK = 0x5949574B  # "YIWK"


def _ensure_signing_keys(app: Flask, provider: Provider) -> None:
    """Issue 11: the first start creates the signing keys when there are none, as `db
    upgrade` creates the schema. Before the schema exists nothing happens (the log says
    what to run); /readyz then reports the missing keys."""
    with app.app_context():
        try:
            if not inspect(db.engine).has_table("idp_signing_keys"):
                log.warning("signing keys not created: the database has no schema yet; run "
                            "`flask --app wsgi db upgrade` (keys are then created at the next start or by "
                            "`flask --app wsgi keys ensure`)")
                return
            if db.engine.dialect.name == "postgresql":
                db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _KEYS_LOCK})
            from admin.actor import Actor
            from admin.service import AdminServices

            # The same audited operation as `keys ensure` (admin.keys.ensure), by "system".
            if AdminServices(provider.services(db.session())).keys.ensure(Actor.system()):
                log.info("signing keys created at start")
            db.session.commit()
        except SQLAlchemyError:
            db.session.rollback()
            log.exception("signing keys could not be checked at start; run `flask --app wsgi keys ensure`")
        finally:
            db.session.remove()


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    passwords: PasswordHasher | None = None,
    **provider_overrides: Any,
) -> Flask:
    """Build the app. ``store``, ``clock`` and ``passwords`` may be injected (tests);
    everything else comes from ``settings``. Raises ``ConfigurationError`` when the
    settings are unsafe for their environment."""
    settings = settings or Settings()
    settings.check_production()
    configure_logging(settings.log_level)
    keys = settings.resolved_keys()

    app = Flask(__name__, instance_path=str(settings.instance_path.resolve()), static_folder=None)
    if not settings.database_url:
        # The embedded default keeps its SQLite file in the instance folder (DESIGN.md §3).
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=keys.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.resolved_database_url(),
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.resolved_database_url()),
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        # The UI cookie carries only the CSRF token and the browser id.
        SESSION_COOKIE_NAME="__Host-yiwang_ui" if settings.secure_cookies else "yiwang_ui",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
        YIWANG_SETTINGS=settings,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies, x_port=settings.trusted_proxies,
        )

    db.init_app(app)
    if settings.resolved_database_url().startswith("sqlite"):
        with app.app_context():
            event.listen(db.engine, "connect", configure_sqlite)
    Migrate(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)

    clock = clock or SystemClock()
    if store is None:
        store = RedisStore(settings.redis_url, settings.redis_prefix) if settings.redis_url else MemoryStore(clock)
    metrics = PrometheusMetrics()
    realname_settings = settings.realname_settings()
    provider_overrides.setdefault("http_registry", Provider.build_registry(realname_settings))
    provider_overrides.setdefault("sms", Provider.build_sms(realname_settings))
    from admin.admins import holds_any_role

    provider_overrides.setdefault("is_administrator", holds_any_role)
    provider = Provider(
        realname_settings=realname_settings,
        certificate_settings=settings.certificate_settings(),
        settings=settings.idp_settings(),
        store=store,
        clock=clock,
        hasher=KeyedHasher(keys.index_key),
        cipher=FieldCipher(dict(keys.data_keys), keys.data_keys[0][0]),
        passwords=passwords or PasswordHasher(),
        key_cache=KeyCache(),
        client_cache=ClientCache(),
        metrics=metrics,
        **provider_overrides,
    )
    app.extensions["yiwang.provider"] = provider
    _CHANGES.install()
    _watch_audit(metrics, settings, clock)
    if settings.create_keys_on_start:
        _ensure_signing_keys(app, provider)

    app.extensions["yiwang.server"] = build_server(request_services, settings.issuer, endpoint_urls(settings.issuer),
                                                   provider.settings.features)

    from idp.views import bp as idp_bp

    app.register_blueprint(idp_bp)

    from admin.api import bp as admin_api_bp

    app.register_blueprint(admin_api_bp)

    from admin.console import bp as console_bp

    app.register_blueprint(console_bp)

    from . import web

    web.install(app, metrics, hsts=settings.issuer.startswith("https://"), metrics_access=web.MetricsAccess(
        networks=settings.metrics_networks,
        token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        trusted_proxies=settings.trusted_proxies,
    ))

    from .cli import register_cli

    register_cli(app)
    return app


def _watch_audit(metrics: PrometheusMetrics, settings: Settings, clock: Clock) -> None:
    """Audit alerts and status on /metrics, computed from the trail at scrape time (issue 6)."""
    from admin.audit import AuditAdminService

    from .metrics import AuditSnapshot

    thresholds = settings.alert_thresholds()

    def snapshot() -> AuditSnapshot:
        # Runs inside the /metrics request: the request's session, rolled back at teardown.
        service = AuditAdminService(db.session, clock=clock, thresholds=thresholds)  # type: ignore[arg-type]
        return AuditSnapshot(service.alerts(), service.status())

    metrics.watch_audit(snapshot, settings.alert_metrics_cache_seconds)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}
