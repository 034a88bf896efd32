"""Ephemeral shared state (authorization codes, SSO sessions, replay caches, counters).

Two implementations of one interface: Redis for production (shared by every instance) and
an in-process store for the embedded single-process default. Each operation the protocol
relies on being atomic (consume-once, set-if-absent, increment-with-expiry) is atomic in
both.
"""

from __future__ import annotations

import threading
from typing import Protocol

import redis

from .clock import Clock, SystemClock


class Store(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def get_many(self, *keys: str) -> list[bytes | None]:
        """Several values in one round trip."""
        ...

    def set(self, key: str, value: bytes, ttl: int) -> None: ...

    def set_if_absent(self, key: str, value: bytes, ttl: int) -> bool: ...

    def consume(self, key: str) -> bytes | None:
        """Return the value and delete it atomically: only one caller ever gets it."""
        ...

    def delete(self, *keys: str) -> None: ...

    def incr(self, key: str, ttl: int) -> int:
        """Increment a counter; the expiry is set when the counter is created."""
        ...

    def ttl(self, key: str) -> int | None: ...

    def add_member(self, key: str, member: str, ttl: int) -> None:
        """Add ``member`` to the set at ``key`` and set the set's expiry to ``ttl`` (each
        add renews it). Members are short printable strings."""
        ...

    def members(self, key: str) -> frozenset[str]:
        """The members of the set at ``key`` (empty when there is none)."""
        ...

    def remove_members(self, key: str, *members: str) -> None: ...

    def ping(self) -> bool: ...

    @property
    def shared(self) -> bool:
        """True when other processes see the same data."""
        ...


class RedisStore:
    shared = True

    def __init__(self, url: str, prefix: str = "yiwang:") -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
        )
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    def get(self, key: str) -> bytes | None:
        return self._redis.get(self._k(key))  # type: ignore[return-value]

    def get_many(self, *keys: str) -> list[bytes | None]:
        return self._redis.mget([self._k(k) for k in keys])  # type: ignore[return-value]

    def set(self, key: str, value: bytes, ttl: int) -> None:
        self._redis.set(self._k(key), value, ex=max(1, ttl))

    def set_if_absent(self, key: str, value: bytes, ttl: int) -> bool:
        return bool(self._redis.set(self._k(key), value, ex=max(1, ttl), nx=True))

    def consume(self, key: str) -> bytes | None:
        return self._redis.getdel(self._k(key))  # type: ignore[return-value]

    def delete(self, *keys: str) -> None:
        if keys:
            self._redis.delete(*(self._k(k) for k in keys))

    def incr(self, key: str, ttl: int) -> int:
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(self._k(key))
        pipe.expire(self._k(key), max(1, ttl), nx=True)
        count, _ = pipe.execute()
        return int(count)

    def ttl(self, key: str) -> int | None:
        value = int(self._redis.ttl(self._k(key)))
        return value if value >= 0 else None

    def add_member(self, key: str, member: str, ttl: int) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.sadd(self._k(key), member)
        pipe.expire(self._k(key), max(1, ttl))
        pipe.execute()

    def members(self, key: str) -> frozenset[str]:
        raw: frozenset[bytes] = frozenset(self._redis.smembers(self._k(key)))  # type: ignore[arg-type]
        return frozenset(m.decode() for m in raw)

    def remove_members(self, key: str, *members: str) -> None:
        if members:
            self._redis.srem(self._k(key), *members)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._redis.close()

    def flush_prefix(self) -> None:
        """Delete every key under this store's prefix (tests and demo resets only)."""
        for key in self._redis.scan_iter(match=self._prefix + "*", count=1000):
            self._redis.delete(key)


class MemoryStore:
    """In-process store for one process. Expired entries are dropped lazily and by a
    sweep every few thousand writes, so memory stays bounded by live entries."""

    shared = False

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._data: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _live(self, key: str) -> tuple[bytes, float] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= self._now():
            del self._data[key]
            return None
        return item

    def _write(self, key: str, value: bytes, ttl: int) -> None:
        self._data[key] = (value, self._now() + max(1, ttl))
        self._writes += 1
        if self._writes % 4096 == 0:
            now = self._now()
            for k in [k for k, (_, exp) in self._data.items() if exp <= now]:
                del self._data[k]

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._live(key)
            return item[0] if item else None

    def get_many(self, *keys: str) -> list[bytes | None]:
        with self._lock:
            out = []
            for key in keys:
                item = self._live(key)
                out.append(item[0] if item else None)
            return out

    def set(self, key: str, value: bytes, ttl: int) -> None:
        with self._lock:
            self._write(key, value, ttl)

    def set_if_absent(self, key: str, value: bytes, ttl: int) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._write(key, value, ttl)
            return True

    def consume(self, key: str) -> bytes | None:
        with self._lock:
            item = self._live(key)
            if item is None:
                return None
            del self._data[key]
            return item[0]

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            item = self._live(key)
            if item is None:
                self._write(key, b"1", ttl)
                return 1
            count = int(item[0]) + 1
            self._data[key] = (str(count).encode(), item[1])
            return count

    def ttl(self, key: str) -> int | None:
        with self._lock:
            item = self._live(key)
            return None if item is None else int(item[1] - self._now())

    # A set is kept as its sorted members joined by newlines, so expiry and the sweep
    # treat it like any other entry.
    def add_member(self, key: str, member: str, ttl: int) -> None:
        if not member or "\n" in member:
            raise ValueError("set members are non-empty single-line strings")
        with self._lock:
            current = self._members(key) | {member}
            self._write(key, "\n".join(sorted(current)).encode(), ttl)

    def _members(self, key: str) -> frozenset[str]:
        item = self._live(key)
        return frozenset(item[0].decode().split("\n")) if item and item[0] else frozenset()

    def members(self, key: str) -> frozenset[str]:
        with self._lock:
            return self._members(key)

    def remove_members(self, key: str, *members: str) -> None:
        with self._lock:
            item = self._live(key)
            if item is None:
                return
            left = self._members(key) - frozenset(members)
            if left:
                self._data[key] = ("\n".join(sorted(left)).encode(), item[1])
            else:
                del self._data[key]

    def ping(self) -> bool:
        return True
