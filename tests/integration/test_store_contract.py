"""The ephemeral store contract (common/store.py; DESIGN.md §3): RedisStore and
MemoryStore behave alike, and the atomic operations the protocol relies on (consume once,
set if absent, increment with expiry) have a single winner under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from common.store import MemoryStore, RedisStore

THREADS = 24


@pytest.fixture(params=["redis", "memory"])
def any_store(request, clock):
    if request.param == "redis":
        return request.getfixturevalue("store")
    return MemoryStore(clock)


def test_get_set_delete(any_store):
    assert any_store.get("k") is None
    any_store.set("k", b"v1", 60)
    assert any_store.get("k") == b"v1"
    any_store.set("k", b"v2", 60)
    assert any_store.get("k") == b"v2"
    any_store.delete("k")
    assert any_store.get("k") is None
    any_store.delete("k", "never-set")  # deleting missing keys is fine
    any_store.delete()


def test_delete_several(any_store):
    any_store.set("a", b"1", 60)
    any_store.set("b", b"2", 60)
    any_store.delete("a", "b")
    assert any_store.get_many("a", "b") == [None, None]


def test_get_many_keeps_order_and_reports_missing(any_store):
    any_store.set("a", b"1", 60)
    any_store.set("c", b"3", 60)
    assert any_store.get_many("a", "b", "c") == [b"1", None, b"3"]
    assert any_store.get_many("c", "a") == [b"3", b"1"]


def test_binary_values(any_store):
    value = bytes(range(256))
    any_store.set("bin", value, 60)
    assert any_store.get("bin") == value


def test_set_if_absent(any_store):
    assert any_store.set_if_absent("once", b"first", 60) is True
    assert any_store.set_if_absent("once", b"second", 60) is False
    assert any_store.get("once") == b"first"


def test_consume_returns_once(any_store):
    any_store.set("code", b"payload", 60)
    assert any_store.consume("code") == b"payload"
    assert any_store.consume("code") is None
    assert any_store.get("code") is None
    assert any_store.consume("missing") is None


def test_incr(any_store):
    assert any_store.incr("n", 60) == 1
    assert any_store.incr("n", 60) == 2
    assert any_store.incr("n", 60) == 3
    assert int(any_store.get("n")) == 3


def test_incr_expiry_is_set_at_creation_only(any_store):
    any_store.incr("window", 100)
    any_store.incr("window", 5000)
    # A fixed window: later increments do not extend it.
    assert 0 < any_store.ttl("window") <= 100


def test_ttl(any_store):
    assert any_store.ttl("missing") is None
    any_store.set("k", b"v", 120)
    assert 110 <= any_store.ttl("k") <= 120
    any_store.set_if_absent("s", b"v", 30)
    assert 20 <= any_store.ttl("s") <= 30


def test_set_refreshes_ttl(any_store):
    any_store.set("k", b"v", 10)
    any_store.set("k", b"v", 1000)
    assert any_store.ttl("k") > 10


def test_ping(any_store):
    assert any_store.ping() is True


def test_memory_store_expires_by_clock(clock):
    s = MemoryStore(clock)
    s.set("k", b"v", 10)
    s.set_if_absent("once", b"v", 10)
    s.incr("n", 10)
    clock.advance(9)
    assert s.get("k") == b"v" and s.ttl("k") == 1
    clock.advance(1)
    assert s.get("k") is None
    assert s.get_many("k", "once", "n") == [None, None, None]
    assert s.consume("k") is None
    # An expired key is absent for set_if_absent and restarts a counter.
    assert s.set_if_absent("once", b"again", 10) is True
    assert s.incr("n", 10) == 1


def test_redis_store_prefixes_keys(store, redis_url):
    import redis

    key = "prefix-check-" + store._prefix
    store.set(key, b"v", 60)
    raw = redis.Redis.from_url(redis_url)
    try:
        assert raw.get(store._prefix + key) == b"v"
        assert raw.get(key) is None
        # TTLs are real Redis expiries (the store never keeps keys forever).
        assert 0 < raw.ttl(store._prefix + key) <= 60
    finally:
        raw.close()


def test_shared_flag():
    # DESIGN.md §3: only a shared store may back several processes.
    assert RedisStore.shared is True and MemoryStore.shared is False


def test_redis_store_unreachable_ping_is_false():
    s = RedisStore("redis://127.0.0.1:1/0", prefix="x:")
    try:
        assert s.ping() is False
    finally:
        s.close()


def _race(fn: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(THREADS)
    results: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        value = fn()
        with lock:
            results.append(value)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == THREADS
    return results


def test_consume_has_a_single_winner(any_store):
    # RFC 6749 §4.1.2: a code is used once, even when redeemed concurrently.
    for round_ in range(5):
        any_store.set(f"code-{round_}", b"payload", 60)
        results = _race(lambda r=round_: any_store.consume(f"code-{r}"))
        assert results.count(b"payload") == 1
        assert results.count(None) == THREADS - 1


def test_set_if_absent_has_a_single_winner(any_store):
    # Replay caches (jti) rely on this.
    for round_ in range(5):
        results = _race(lambda r=round_: any_store.set_if_absent(f"jti-{r}", b"1", 60))
        assert results.count(True) == 1


def test_incr_counts_every_increment(any_store):
    results = _race(lambda: any_store.incr("concurrent", 60))
    assert sorted(results) == list(range(1, THREADS + 1))


def test_sets_add_list_remove_and_expire(any_store, clock):
    # The per-account SSO session index (idp/sessions.py) is such a set.
    assert any_store.members("s") == set()
    any_store.add_member("s", "a", 60)
    any_store.add_member("s", "b", 60)
    any_store.add_member("s", "a", 60)
    assert any_store.members("s") == {"a", "b"}
    any_store.remove_members("s", "a", "never-added")
    assert any_store.members("s") == {"b"}
    any_store.remove_members("s", "b")
    assert any_store.members("s") == set()
    any_store.remove_members("missing", "x")
    any_store.add_member("s", "c", 60)
    assert 0 < (any_store.ttl("s") or 0) <= 60
    any_store.delete("s")
    assert any_store.members("s") == set()


def test_set_members_from_many_threads_are_all_kept(any_store):
    # Two logins of one account on two instances at once: neither sid may be lost.
    barrier = threading.Barrier(THREADS)

    def add(i: int) -> None:
        barrier.wait()
        any_store.add_member("crowd", f"m{i}", 60)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert any_store.members("crowd") == {f"m{i}" for i in range(THREADS)}
