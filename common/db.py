"""SQLAlchemy declarative base with a naming convention (stable constraint names, so
Alembic diffs are clean on PostgreSQL and SQLite) and the Flask-SQLAlchemy handle."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def configure_sqlite(dbapi_connection: object, connection_record: object) -> None:
    """Foreign keys on, WAL journal (readers do not block the writer), a busy timeout
    instead of immediate "database is locked" errors."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def insert_unique(session: Session, row: object, conflict: Exception) -> None:
    """Insert ``row`` in a savepoint; a unique or foreign-key violation rolls back only
    the savepoint and raises ``conflict`` (a domain error with a public message), so the
    caller's transaction stays usable and nothing half-written remains."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise conflict from exc


# Flask-SQLAlchemy owns the request-scoped session; services receive ``db.session``.
db = SQLAlchemy(model_class=Base)


def current_session(session: Session | scoped_session[Any]) -> Session:
    """The session itself: a ``scoped_session`` (Flask-SQLAlchemy's ``db.session``)
    proxies neither ``in_transaction()`` nor ``get_bind()`` reliably for a decision."""
    return session() if isinstance(session, scoped_session) else session
