"""Per-process caches that every instance invalidates at once (issue 12, DESIGN.md §7).

A hot path (userinfo, introspection, the token endpoint) should not read the database for
what rarely changes — an account's claim sources, a client's registration — yet a change
made on one instance (an account locked, a client disabled) must take effect on every
instance at the next request, not after a TTL.

The rule, as for HTTP validators: every cached thing has a *version* in the shared store,
``<prefix>:<id>``, plus one ``<prefix>:all`` for changes that touch many rows at once. A
process keeps an entry only with the versions it saw *before* reading the database; a
writer sets a new random version *after* its transaction commits (``ChangeWatch``). So an
entry read before a commit always carries an older version than the one the commit sets,
and the next request that sees the new version reads again. The hot path fetches the
versions in the store round trip it makes anyway (the revocation check), so a hit costs no
round trip of its own.

A version that is missing (never set, evicted, the store restarted) is created with
set-if-absent before the entry is kept; when another process won that race the value is
returned but not cached. Entries also age out after ``max_age`` seconds, which bounds what
a version write that failed (the store unreachable just after a commit) could leave stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from .crypto import random_token
from .store import Store

log = logging.getLogger("yiwang.versions")

# Longer than any entry's max_age by far, so a version key never expires under an entry
# that was tagged with it (an expired key is a missing one: a new random value is set).
VERSION_TTL = 86400

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Versions = tuple[bytes | None, bytes | None]


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    versions: tuple[bytes, bytes]
    expires: float
    value: V


class VersionedCache(Generic[K, V]):
    """A per-process cache of ``load(id)`` results, valid while the id's versions in the
    shared store are the ones seen when the entry was loaded (module docstring)."""

    def __init__(self, prefix: str, *, max_age: float = 60.0, max_entries: int = 10000) -> None:
        self.prefix = prefix
        self._max_age = max_age
        self._max = max_entries
        self._items: dict[K, _Entry[V]] = {}
        self._lock = threading.Lock()

    def keys(self, ident: K) -> tuple[str, str]:
        """The store keys of ``ident``'s versions: its own and the prefix-wide one."""
        return f"{self.prefix}:{ident}", f"{self.prefix}:all"

    def get(self, store: Store, ident: K, load: Callable[[K], V], seen: Versions | None = None) -> V:
        """The cached value of ``ident``, or ``load(ident)`` when the entry is missing,
        older than ``max_age`` or tagged with other versions. ``seen``: the versions the
        caller already fetched (``keys(ident)``, in that order), read before anything
        else of this request; without it they are fetched here."""
        keys = self.keys(ident)
        versions = tuple(seen) if seen is not None else tuple(store.get_many(*keys))
        now = time.monotonic()
        entry = self._items.get(ident)
        if entry is not None and entry.versions == versions and entry.expires > now:
            return entry.value
        value = load(ident)
        tagged: list[bytes] = []
        for key, version in zip(keys, versions, strict=True):
            if version is None:
                fresh = random_token(9).encode()
                if not store.set_if_absent(key, fresh, VERSION_TTL):
                    # Someone set a version since we looked: a change may have committed
                    # after our read. Serve what we read (it is what the database said
                    # during this request) but do not keep it.
                    return value
                version = fresh
            tagged.append(version)
        with self._lock:
            if len(self._items) >= self._max:
                self._items.clear()
            self._items[ident] = _Entry((tagged[0], tagged[1]), now + self._max_age, value)
        return value

    def invalidate(self, ident: K | None = None) -> None:
        """Drop this process's entry (or all): a change here is seen at once even before
        its version write reaches the store."""
        with self._lock:
            if ident is None:
                self._items.clear()
            else:
                self._items.pop(ident, None)


def bump(store: Store, keys: Iterable[str]) -> None:
    """Give each version key a new random value (after a commit)."""
    for key in keys:
        store.set(key, random_token(9).encode(), VERSION_TTL)


_PENDING = "yiwang.versions.pending"


class ChangeWatch:
    """Sets new versions after a commit that changed watched rows.

    ``watch(Model, prefix, ident)``: a flushed insert, update or delete of a ``Model`` row
    changes the version ``<prefix>:<ident(row)>``; an ORM bulk UPDATE or DELETE of it
    changes ``<prefix>:all``. The versions are written after the transaction commits (a
    rolled-back one writes nothing), to the store ``store_of()`` returns for the current
    application; outside an application nothing is written.

    Writes that bypass the ORM session (raw SQL in a console) are not seen: they show on
    every instance within the caches' ``max_age``.
    """

    def __init__(self, store_of: Callable[[], Store | None]) -> None:
        self._store_of = store_of
        self._watched: dict[type, tuple[str, Callable[[Any], Any]]] = {}
        self._installed = False

    def watch(self, model: type, prefix: str, ident: Callable[[Any], Any]) -> None:
        self._watched[model] = (prefix, ident)

    def install(self) -> None:
        if self._installed:
            return
        event.listen(Session, "after_flush", self._after_flush)
        event.listen(Session, "do_orm_execute", self._do_orm_execute)
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_transaction_end", self._after_transaction_end)
        self._installed = True

    def _pending(self, session: Session) -> set[str]:
        pending: set[str] = session.info.setdefault(_PENDING, set())
        return pending

    def _after_flush(self, session: Session, _ctx: UOWTransaction) -> None:
        # The new/dirty/deleted collections still hold the pre-flush state here.
        for obj in (*session.new, *session.dirty, *session.deleted):
            watched = self._watched.get(type(obj))
            if watched is not None:
                prefix, ident = watched
                value = ident(obj)
                if value is not None:
                    self._pending(session).add(f"{prefix}:{value}")

    def _do_orm_execute(self, state: ORMExecuteState) -> None:
        if not (state.is_update or state.is_delete):
            return
        mapper = state.bind_mapper
        watched = self._watched.get(mapper.class_) if mapper is not None else None
        if watched is not None:
            self._pending(state.session).add(f"{watched[0]}:all")

    def _after_commit(self, session: Session) -> None:
        pending = session.info.pop(_PENDING, None)
        if not pending:
            return
        store = self._store_of()
        if store is None:
            return
        try:
            bump(store, sorted(pending))
        except Exception:  # noqa: BLE001 - the commit stands; the caches' max_age bounds it
            log.exception("cache versions not updated after a commit; other instances may serve the old "
                          "values for up to a minute")

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        # The outermost transaction ended without after_commit: rolled back, nothing to
        # announce. (A savepoint's end keeps what the enclosing transaction flushed.)
        if transaction.parent is None:
            session.info.pop(_PENDING, None)
