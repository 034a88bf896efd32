"""Issue 11: one store for the short-lived steps of a browser journey (idp/pending_steps.py),
replacing the interaction store's twin in the real-name views. Records are encrypted, bound
to their kind, id and browser, expire, and anything unreadable is "expired", not an error:
the twin bound its records to the kind alone and raised on a record it could not decrypt."""

from __future__ import annotations

import json
import os

import pytest

from common.crypto import FieldCipher
from common.store import MemoryStore
from idp.pending_steps import (
    INTERACTION,
    KINDS,
    LOGOUT_REQUEST,
    OWNER,
    REGISTRATION,
    SECOND_FACTOR,
    PendingStepStore,
)

BROWSER = "browser-a"


@pytest.fixture(params=["redis", "memory"])
def any_store(request, clock):
    if request.param == "redis":
        return request.getfixturevalue("store")
    return MemoryStore(clock)


@pytest.fixture
def cipher():
    return FieldCipher({"t1": os.urandom(32)}, "t1")


@pytest.fixture
def steps(any_store, cipher):
    return PendingStepStore(any_store, cipher)


def test_a_step_round_trips_encrypted(steps, any_store):
    pid = steps.save(REGISTRATION, {"name": "张三", "phone": "13800138000"}, browser=BROWSER)
    record = steps.load(REGISTRATION, pid, browser=BROWSER)
    assert record == {"name": "张三", "phone": "13800138000", OWNER: BROWSER}
    raw = any_store.get(f"pending:register:{pid}")
    assert raw is not None and b"13800138000" not in raw and "张三".encode() not in raw


def test_only_the_browser_that_started_it_reads_it(steps):
    pid = steps.save(SECOND_FACTOR, {"account_id": 7}, browser=BROWSER)
    assert steps.load(SECOND_FACTOR, pid, browser="browser-b") is None
    assert steps.load(SECOND_FACTOR, pid, browser="") is None
    with pytest.raises(ValueError):
        steps.save(SECOND_FACTOR, {"account_id": 7}, browser="")


def test_a_record_is_bound_to_its_id_and_kind(steps, any_store):
    mine = steps.save(SECOND_FACTOR, {"account_id": 1}, browser=BROWSER)
    theirs = steps.save(SECOND_FACTOR, {"account_id": 2}, browser=BROWSER)
    # Swapping the stored values of two steps must not hand one's record to the other.
    any_store.set(f"pending:mfa:{theirs}", any_store.get(f"pending:mfa:{mine}"), 600)
    assert steps.load(SECOND_FACTOR, theirs, browser=BROWSER) is None
    # Nor does a record of one kind read as another kind's under the same id.
    any_store.set(f"pending:register:{mine}", any_store.get(f"pending:mfa:{mine}"), 600)
    assert steps.load(REGISTRATION, mine, browser=BROWSER) is None
    assert steps.load(SECOND_FACTOR, mine, browser=BROWSER) == {"account_id": 1, OWNER: BROWSER}


@pytest.mark.parametrize("blob", [b"garbage", b"v1.t1.AAAA", b"v1.retired.AAAA", b'{"plr": "https://a.example/x"}',
                                  b"\xff\xfe"])
def test_an_unreadable_record_reads_as_expired(steps, any_store, blob):
    any_store.set("pending:register:abc", blob, 600)
    assert steps.load(REGISTRATION, "abc", browser=BROWSER) is None


def test_ids_longer_than_ours_are_not_looked_up(steps):
    assert steps.load(INTERACTION, "x" * 65, browser=BROWSER) is None
    assert steps.load(INTERACTION, None, browser=BROWSER) is None
    assert steps.take(LOGOUT_REQUEST, "", browser=BROWSER) is None


def test_update_writes_back_and_drop_ends(steps):
    pid = steps.save(SECOND_FACTOR, {"failures": 0}, browser=BROWSER)
    record = steps.load(SECOND_FACTOR, pid, browser=BROWSER)
    record["failures"] = 1
    steps.update(SECOND_FACTOR, pid, record)
    assert steps.load(SECOND_FACTOR, pid, browser=BROWSER)["failures"] == 1
    with pytest.raises(ValueError):
        steps.update(SECOND_FACTOR, pid, {"failures": 2})  # not a loaded record: no owner
    steps.drop(SECOND_FACTOR, pid)
    assert steps.load(SECOND_FACTOR, pid, browser=BROWSER) is None


def test_take_is_single_use_even_for_another_browser(steps):
    lid = steps.save(LOGOUT_REQUEST, {"plr": None, "state": "s"}, browser=BROWSER)
    assert steps.take(LOGOUT_REQUEST, lid, browser=BROWSER) == {"plr": None, "state": "s", OWNER: BROWSER}
    assert steps.take(LOGOUT_REQUEST, lid, browser=BROWSER) is None
    other = steps.save(LOGOUT_REQUEST, {"plr": None, "state": "s"}, browser=BROWSER)
    assert steps.take(LOGOUT_REQUEST, other, browser="browser-b") is None
    assert steps.take(LOGOUT_REQUEST, other, browser=BROWSER) is None


def test_steps_expire_and_update_starts_the_lifetime_again(clock, cipher):
    steps = PendingStepStore(MemoryStore(clock), cipher)
    pid = steps.save(SECOND_FACTOR, {"failures": 0}, browser=BROWSER)
    clock.advance(SECOND_FACTOR.ttl - 1)
    steps.update(SECOND_FACTOR, pid, steps.load(SECOND_FACTOR, pid, browser=BROWSER))
    clock.advance(SECOND_FACTOR.ttl - 1)
    assert steps.load(SECOND_FACTOR, pid, browser=BROWSER) is not None
    clock.advance(1)
    assert steps.load(SECOND_FACTOR, pid, browser=BROWSER) is None
    iid = steps.save(INTERACTION, {"params": []}, browser=BROWSER)
    clock.advance(INTERACTION.ttl)
    assert steps.load(INTERACTION, iid, browser=BROWSER) is None


def test_interactions_written_before_the_shared_store_still_load(steps, any_store, cipher):
    # The pre-issue-11 format: key "interaction:<id>", label "interaction.<id>", owner in "bid".
    old = {"params": [["client_id", "portal"]], "created_at": 1, "bid": BROWSER, "consent_done": False}
    any_store.set("interaction:old-id", cipher.encrypt(json.dumps(old), "interaction.old-id").encode(), 900)
    assert steps.load(INTERACTION, "old-id", browser=BROWSER) == old


def test_kinds_have_distinct_prefixes():
    assert len({k.prefix for k in KINDS}) == len(KINDS)
