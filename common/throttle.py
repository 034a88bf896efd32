"""Fixed-window counters and resend intervals in the shared store (OWASP ASVS 5 §2.4
anti-automation, §6.3.1 brute force: failed logins and codes, SMS sends, registrations,
pending authorization requests).

A window ends by the store's TTL in real time and, through the start time kept next to
the counter, by the injected clock too, so tests move time instead of sleeping. Callers
pass keys that are already keyed hashes: no phone number or IP is ever part of a key.
"""

from __future__ import annotations

from common.clock import Clock
from common.store import Store


class Throttle:
    def __init__(self, *, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def count(self, key: str, window: int) -> int:
        """Hits counted in the current window of ``key``."""
        count, since = self._store.get_many(key, key + ":since")
        if count is None:
            return 0
        if since is not None and self._clock.timestamp() - int(since) >= window:
            self._store.delete(key, key + ":since")
            return 0
        return int(count)

    def hit(self, key: str, window: int) -> int:
        """Count one hit; returns the count in the current window including this one."""
        now = self._clock.timestamp()
        since = self._store.get(key + ":since")
        if since is not None and now - int(since) >= window:
            self._store.delete(key, key + ":since")
        self._store.set_if_absent(key + ":since", str(now).encode(), window)
        return self._store.incr(key, window)

    def clear(self, key: str) -> None:
        """End the window of ``key`` now (a success that resets a failure count)."""
        self._store.delete(key, key + ":since")

    def reserve(self, key: str, interval: int) -> bool:
        """True, and the next ``interval`` seconds reserved, unless ``key`` was reserved
        less than ``interval`` seconds ago. Atomic in real time (set-if-absent)."""
        now = self._clock.timestamp()
        if self._store.set_if_absent(key, str(now).encode(), interval):
            return True
        last = self._store.get(key)
        if last is not None and now - int(last) < interval:
            return False
        # The injected clock passed the interval before the store's TTL did.
        self._store.set(key, str(now).encode(), interval)
        return True
