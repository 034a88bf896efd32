"""The tamper-evident audit trail (DESIGN.md §7, issue 6) on real PostgreSQL: events are
hash-chained per shard, written with the transaction they record, and `flask audit verify`
finds modified, deleted and truncated rows, and (through signed checkpoints) a consistent
rewrite of tail and head; concurrent writers never break a chain; no personal data."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from common.audit import AUDIT_CHAINS, GENESIS, AuditTrail, chain_for, entry_hash, verify_trail
from common.clock import FrozenClock
from common.crypto import KeyedHasher
from common.db import db
from common.models import AuditChainHead, AuditCheckpoint, AuditEvent
from idp.errors import DuplicateAccountError
from tests.helpers import Browser, form_field

ACTOR = "account:42"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str):
        return runner.invoke(args=list(args))

    return run


def _verify_json(cli, expect_exit: int) -> dict:
    result = cli("audit", "verify", "--json")
    assert result.exit_code == expect_exit, (result.output, result.exception)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _events(chain: int | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    stmt = select(AuditEvent).order_by(AuditEvent.chain, AuditEvent.seq)
    if chain is not None:
        stmt = stmt.where(AuditEvent.chain == chain)
    return list(db.session.scalars(stmt))


def _unlocked() -> None:
    """Let the test play the attacker who owns the table: the append-only trigger goes
    (inside the test's transaction, rolled back afterwards)."""
    db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))


def _record_many(services, n: int, actor: str = ACTOR) -> int:
    for i in range(n):
        services.audit.record("login.success", actor=actor, client_id="portal", ip="192.0.2.7",
                              details={"amr": ["pwd"], "n": i})
    db.session.commit()
    return chain_for(actor)


# -- chaining ---------------------------------------------------------------------------


def test_events_are_chained_per_shard_and_verify(services, cli):
    chain = _record_many(services, 3)
    services.audit.record("token.issue", actor="client:portal", target="account:7", client_id="portal",
                          details={"grant_type": "authorization_code"})
    db.session.commit()

    rows = _events(chain)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.hash
    for r in rows:
        cols = {c: getattr(r, c) for c in ("chain", "seq", "at", "actor", "action", "target", "outcome", "reason",
                                           "client_id", "ip_hash", "details", "prev_hash")}
        assert entry_hash(cols) == r.hash
        # The IP is kept only as a keyed hash.
        assert r.ip_hash and "192.0.2.7" not in r.ip_hash
    # The chain of an event is chosen by its subject: the target when there is one.
    token_event = next(r for r in _events() if r.action == "token.issue")
    assert token_event.chain == chain_for("account:7") and 0 <= token_event.chain < AUDIT_CHAINS
    head = db.session.get(AuditChainHead, chain)
    assert (head.seq, head.head_hash) == (3, rows[-1].hash)

    out = _verify_json(cli, 0)
    assert out["ok"] is True and out["events"] == 4 and out["first_broken"] is None


def test_the_database_refuses_updates_and_deletes(services):
    _record_many(services, 1)
    for stmt in (update(AuditEvent).values(outcome="denied"), delete(AuditEvent)):
        with pytest.raises(DBAPIError, match="append-only"), db.session.begin_nested():
            db.session.execute(stmt)
    assert len(_events()) == 1


# -- tampering ------------------------------------------------------------------------------


def test_modified_details_are_detected(services, cli):
    chain = _record_many(services, 4)
    _unlocked()
    victim = _events(chain)[1]
    db.session.execute(update(AuditEvent).where(AuditEvent.id == victim.id).values(details={"amr": ["hwk"]}))
    db.session.commit()

    out = _verify_json(cli, 1)
    assert out["ok"] is False
    assert out["first_broken"] == {"chain": chain, "seq": 2, "problem": "modified", "event_id": victim.id,
                                   "checkpoint_id": None, "archive_line": None}
    text_out = cli("audit", "verify")
    assert text_out.exit_code == 1
    assert f"chain {chain} seq 2: modified" in text_out.stdout


def test_modified_row_with_recomputed_hash_breaks_the_next_link(services):
    chain = _record_many(services, 3)
    _unlocked()
    victim = _events(chain)[0]
    cols = {c: getattr(victim, c) for c in ("chain", "seq", "at", "actor", "action", "target", "outcome", "reason",
                                            "client_id", "ip_hash", "prev_hash")}
    cols["details"] = {"amr": ["hwk"]}
    db.session.execute(update(AuditEvent).where(AuditEvent.id == victim.id)
                       .values(details=cols["details"], hash=entry_hash(cols)))
    db.session.commit()
    report = verify_trail(db.session)
    assert [(b.chain, b.seq, b.problem) for b in report.broken] == [(chain, 2, "prev_hash")]


def test_deleted_row_is_detected(services, cli):
    chain = _record_many(services, 4)
    _unlocked()
    victim = _events(chain)[2]
    db.session.execute(delete(AuditEvent).where(AuditEvent.id == victim.id))
    db.session.commit()

    out = _verify_json(cli, 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["seq"], out["first_broken"]["problem"]) == (
        chain, 3, "missing")


def test_truncated_tail_is_detected_by_the_head_row(services, cli):
    chain = _record_many(services, 4)
    _unlocked()
    db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq >= 3))
    db.session.commit()
    out = _verify_json(cli, 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["seq"], out["first_broken"]["problem"]) == (
        chain, 3, "truncated")


def test_rewound_head_is_detected(services, cli):
    chain = _record_many(services, 4)
    rows = _events(chain)
    db.session.execute(update(AuditChainHead).where(AuditChainHead.chain == chain)
                       .values(seq=2, head_hash=rows[1].hash))
    db.session.commit()
    out = _verify_json(cli, 1)
    assert (out["first_broken"]["seq"], out["first_broken"]["problem"]) == (3, "beyond_head")


def test_checkpoint_detects_a_consistent_rewrite_of_tail_and_head(services, cli):
    chain = _record_many(services, 4)
    result = cli("audit", "checkpoint", "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    checkpoint = json.loads(result.stdout.strip().splitlines()[-1])
    assert checkpoint["jws"].count(".") == 2
    assert _verify_json(cli, 0)["checkpoints"] == 1

    # The attacker deletes the last two events and rewinds the head to match: the chain
    # and its head agree, only the signed checkpoint still knows seq 4.
    _unlocked()
    rows = _events(chain)
    db.session.execute(delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq >= 3))
    db.session.execute(update(AuditChainHead).where(AuditChainHead.chain == chain)
                       .values(seq=2, head_hash=rows[1].hash))
    db.session.commit()
    assert [(b.chain, b.problem) for b in verify_trail(db.session).broken] == []  # without checkpoints: unseen

    out = _verify_json(cli, 1)
    assert out["first_broken"] == {"chain": chain, "seq": 4, "problem": "checkpoint_mismatch", "event_id": None,
                                   "checkpoint_id": checkpoint["checkpoint_id"], "archive_line": None}


def test_checkpoint_detects_a_rewritten_tail_with_a_matching_head(services, cli):
    chain = _record_many(services, 3)
    assert cli("audit", "checkpoint").exit_code == 0
    _unlocked()
    last = _events(chain)[-1]
    cols = {c: getattr(last, c) for c in ("chain", "seq", "at", "actor", "action", "target", "outcome", "reason",
                                          "client_id", "ip_hash", "prev_hash")}
    cols["details"] = {"amr": ["hwk"], "n": 2}
    forged = entry_hash(cols)
    db.session.execute(update(AuditEvent).where(AuditEvent.id == last.id).values(details=cols["details"], hash=forged))
    db.session.execute(update(AuditChainHead).where(AuditChainHead.chain == chain).values(head_hash=forged))
    db.session.commit()
    out = _verify_json(cli, 1)
    assert (out["first_broken"]["chain"], out["first_broken"]["seq"], out["first_broken"]["problem"]) == (
        chain, 3, "checkpoint_mismatch")


def test_forged_checkpoint_signature_is_detected(services, cli):
    _record_many(services, 2)
    assert cli("audit", "checkpoint").exit_code == 0
    row = db.session.scalars(select(AuditCheckpoint)).one()
    header, payload, signature = row.jws.split(".")
    row.jws = f"{header}.{payload}.{signature[:-4]}AAAA"
    db.session.commit()
    out = _verify_json(cli, 1)
    assert out["first_broken"]["problem"] == "checkpoint_signature"


# -- transactions ---------------------------------------------------------------------------


def test_event_is_rolled_back_with_its_transaction(services, user):
    before = len(_events())
    services.audit.record("account.create", actor="admin:root")
    with pytest.raises(DuplicateAccountError):
        services.accounts.create(username=user.username, password="another long password")
    db.session.rollback()
    assert len(_events()) == before
    # The discarded event does not come back with the next commit either.
    services.audit.record("account.lock", actor="admin:root")
    db.session.commit()
    assert [e.action for e in _events()][before:] == ["account.lock"]


def test_failed_login_is_recorded_durably(http, oauth_client, user):
    page = Browser(http).authorize(oauth_client, challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    page = http.get(page.headers["Location"])
    resp = http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                                     "interaction": form_field(page.get_data(as_text=True), "interaction"),
                                     "identifier": user.username, "password": "wrong password!"})
    assert resp.status_code == 401
    failures = [e for e in _events() if e.action == "login.failure"]
    assert len(failures) == 1
    assert (failures[0].outcome, failures[0].reason, failures[0].client_id) == (
        "denied", "invalid_credentials", oauth_client.client_id)


def test_concurrent_writers_never_break_a_chain(fresh_database):
    engine = create_engine(fresh_database, pool_size=10)
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    hasher = KeyedHasher(b"k" * 32)
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with Session(engine) as session:
                    trail = AuditTrail(session, clock=clock, hasher=hasher)
                    # Half the writers share one actor (one chain), the others spread out;
                    # every third transaction writes two events on two chains.
                    trail.record("login.success", actor="account:1" if n % 2 else f"account:{n * 1000 + i}")
                    if i % 3 == 0:
                        trail.record("token.issue", actor="client:c", target=f"account:{i}")
                    session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not errors, errors
    with Session(engine) as session:
        report = verify_trail(session)
        total = session.scalar(select(func.count()).select_from(AuditEvent))
        heads = session.scalar(select(func.sum(AuditChainHead.seq)))
    engine.dispose()
    expected = threads * per_thread + threads * len(range(0, per_thread, 3))
    assert report.ok, report.broken
    assert total == expected == heads == report.events


# -- personal data -----------------------------------------------------------------------------


def test_no_personal_data_in_events_after_a_full_flow(http, services, oauth_client, user):
    browser = Browser(http)
    # A failed login first (wrong password), then the full flow with consent.
    page = browser.follow(browser.authorize(oauth_client, challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
    http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                              "interaction": form_field(page.get_data(as_text=True), "interaction"),
                              "identifier": "13800138000", "password": "not the password"})
    tokens = browser.tokens(oauth_client, user, scope="openid profile phone offline_access")
    refreshed = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=oauth_client.auth).get_json()
    http.post("/revoke", data={"token": refreshed["refresh_token"]}, auth=oauth_client.auth)
    http.post("/token", data={"grant_type": "client_credentials"}, auth=oauth_client.auth)

    rows = _events()
    actions = {e.action for e in rows}
    assert {"login.failure", "login.success", "consent.grant", "token.issue", "token.revoke"} <= actions
    grants = sorted(e.details["grant_type"] for e in rows if e.action == "token.issue")
    # Machine-to-machine tokens are counted in metrics, not chained one by one (policy in
    # idp/server.py ClientCredentialsGrant).
    assert grants == ["authorization_code", "refresh_token"]
    secrets = ["张三", "13800138000", user.password, "not the password", tokens["access_token"],
               tokens["refresh_token"], tokens["id_token"], refreshed["refresh_token"], oauth_client.secret]
    for e in rows:
        dumped = json.dumps({c.name: str(getattr(e, c.name)) for c in AuditEvent.__table__.columns},
                            ensure_ascii=False)
        for value in secrets:
            assert value not in dumped, (e.action, value)
        assert "127.0.0.1" not in dumped
    assert verify_trail(db.session).ok


def test_personal_data_in_details_is_refused(services):
    with pytest.raises(ValueError):
        services.audit.record("x", actor=ACTOR, details={"name": "张三"})
    with pytest.raises(ValueError):
        services.audit.record("x", actor=ACTOR, details={"note": "13800138000"})
    with pytest.raises(ValueError):
        services.audit.record("x", actor="alice")  # not a pseudonymous id
