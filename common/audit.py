"""Tamper-evident audit trail (DESIGN.md §7, issue 6): append-only events, each chained to
the previous one of its chain by SHA-256, written in the transaction of the change they
record, verified by ``flask audit verify``.

Scale: one global chain would make every audited transaction of every instance wait for
one row lock. Events are instead spread over ``AUDIT_CHAINS`` independent chains, chosen
by a hash of the event's subject (its target, else its actor), so one account's events stay
in order on one chain. Each chain has a head row (``audit_chain_heads``); appending takes
that row's lock with ``UPDATE ... RETURNING`` and releases it at commit, so writers on
different chains never wait for each other and writers on one chain serialise exactly.
``record`` only queues the event in the session; the rows are written by a
``before_commit`` hook of the same transaction, so the head lock is held for the commit
only (never across argon2, registry or SMS calls made later in the request), and a
transaction's chains are locked in ascending order (no lock-order deadlocks). A rollback
discards the queued events with everything else. SQLite (embedded default) has one
writer at a time anyway; the same statements run there.

Privacy (PIPL Art. 51 security measures, Art. 19 retention): events carry pseudonymous ids
and reason codes, never names, ID numbers, phone numbers, tokens, codes or secrets. The
client IP is stored as a keyed hash: investigators can still link events from one address,
and check a suspected address with the key, but the permanent (never erased) trail does
not hold the address itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, cast

from sqlalchemy import Table, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from .clock import Clock
from .crypto import KeyedHasher
from .errors import DomainError
from .models import AuditChainAnchor, AuditChainHead, AuditCheckpoint, AuditEvent

AUDIT_CHAINS = 16
GENESIS = "0" * 64
OUTCOMES = ("ok", "denied", "error")
CHECKPOINT_TYP = "audit-checkpoint+jwt"
_PENDING = "yiwang.audit.pending"
_EVENTS = cast(Table, AuditEvent.__table__)
_HEADS = cast(Table, AuditChainHead.__table__)

# Defence in depth against personal data in ``details``: keys that name such data, and
# values shaped like a mainland mobile number or a resident ID number (GB 11643-1999).
_FORBIDDEN_KEYS = re.compile(r"name|phone|mobile|id_number|idcard|password|secret|token$|^code$|otp|totp", re.I)
_PERSONAL_VALUE = re.compile(r"(?<!\d)(1[3-9]\d{9}|\d{17}[\dXx]|\d{15})(?!\d)")
_ACTOR = re.compile(r"^(account|client|admin|legal_person|credential|delivery):[\w.\-@:]{1,80}$|^(system|anonymous)$")


def is_pseudonymous_id(value: str) -> bool:
    """Whether ``value`` has the shape of an event's actor or target (``account:42``,
    ``client:portal``, ``system``...): the only identifiers the trail holds."""
    return bool(_ACTOR.match(value))


def looks_personal(value: str) -> bool:
    """Whether ``value`` contains something shaped like a mobile or resident ID number:
    such text must not reach an event, not even as a search filter."""
    return bool(_PERSONAL_VALUE.search(value))


def chain_for(key: str, chains: int = AUDIT_CHAINS) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % chains


def canonical(data: Mapping[str, Any]) -> bytes:
    """The bytes the hash covers: sorted keys, no spaces, UTF-8 (RFC 8785-like; our values
    are strings, integers, booleans and null only, so no number formatting issues)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an event (every column but ``id``)."""
    body = {
        "chain": row["chain"],
        "seq": row["seq"],
        "at": _at_text(row["at"]),
        "actor": row["actor"],
        "action": row["action"],
        "target": row["target"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "client_id": row["client_id"],
        "ip_hash": row["ip_hash"],
        "details": row["details"],
        "prev_hash": row["prev_hash"],
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def _check_details(details: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in details.items():
        if not isinstance(key, str) or _FORBIDDEN_KEYS.search(key):
            raise ValueError(f"audit detail key {key!r} may not carry personal data or secrets")
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if v is not None and not isinstance(v, str | int | bool):
                raise ValueError(f"audit detail {key!r}: only strings, integers, booleans")
            if isinstance(v, str) and (len(v) > 200 or _PERSONAL_VALUE.search(v)):
                raise ValueError(f"audit detail {key!r} looks like personal data or is too long")
        out[key] = list(value) if isinstance(value, list | tuple) else value
    return out


@dataclass
class _Pending:
    chain: int
    row: dict[str, Any]


class AuditTrail:
    """Records audit events in the caller's transaction. Never commits."""

    def __init__(self, session: Session, *, clock: Clock, hasher: KeyedHasher, chains: int = AUDIT_CHAINS) -> None:
        self._session = session
        self._clock = clock
        self._hasher = hasher
        self._chains = chains

    def record(
        self,
        action: str,
        *,
        actor: str,
        outcome: str = "ok",
        reason: str | None = None,
        target: str | None = None,
        client_id: str | None = None,
        ip: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one event in the current transaction: it is written (chained and hashed)
        when the transaction commits and vanishes if it rolls back. Raises ``ValueError``
        for a malformed actor or outcome, or details that look like personal data."""
        if outcome not in OUTCOMES:
            raise ValueError(f"audit outcome {outcome!r}")
        for who in (actor, target):
            if who is not None and not _ACTOR.match(who):
                raise ValueError(f"audit actor/target {who!r} is not a pseudonymous id")
        # The request's scoped session proxy resolves to this thread's session.
        session = self._session() if isinstance(self._session, scoped_session) else self._session
        if not session.in_transaction():
            # Bind the queue to a transaction, so its end (commit, rollback, close) empties it.
            session.begin()
        row = {
            "at": self._clock.now(),
            "actor": actor,
            "action": action[:64],
            "target": target,
            "outcome": outcome,
            "reason": reason[:64] if reason else None,
            "client_id": client_id[:64] if client_id else None,
            "ip_hash": self._hasher.digest("audit-ip", ip) if ip else None,
            "details": _check_details(details or {}),
        }
        pending: list[_Pending] = session.info.setdefault(_PENDING, [])
        pending.append(_Pending(chain_for(target or actor, self._chains), row))

    def flush(self) -> None:
        """Write the queued events now (still uncommitted); takes the chain locks early."""
        _write_pending(self._session)


def _lock_head(session: Session, chain: int, count: int) -> tuple[int, str]:
    """Reserve ``count`` sequence numbers on ``chain``: returns the seq before them and the
    head hash, holding the head row's lock until the transaction ends."""
    heads = _HEADS
    bump = (
        update(heads).where(heads.c.chain == chain).values(seq=heads.c.seq + count)
        .returning(heads.c.seq, heads.c.head_hash)
    )
    got = session.execute(bump).first()
    if got is None:
        # First event on this chain: create its head; a concurrent creator wins harmlessly.
        dialect = session.connection().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(heads).values(chain=chain, seq=0, head_hash=GENESIS).on_conflict_do_nothing())
        got = session.execute(bump).first()
    assert got is not None  # noqa: S101 - the row exists now
    return int(got[0]) - count, str(got[1])


def _write_pending(session: Session) -> None:
    pending: list[_Pending] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    heads = _HEADS
    # Ascending chain order: two transactions never wait for each other's heads in a cycle.
    for chain, group in groupby(sorted(pending, key=lambda p: p.chain), key=lambda p: p.chain):
        items = list(group)
        seq, prev = _lock_head(session, chain, len(items))
        rows = []
        for item in items:
            seq += 1
            row = dict(item.row, chain=chain, seq=seq, prev_hash=prev)
            row["hash"] = prev = entry_hash(row)
            rows.append(row)
        session.execute(_EVENTS.insert(), rows)
        session.execute(update(heads).where(heads.c.chain == chain).values(head_hash=prev))


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # A savepoint's release is not the end of the transaction: wait for the real commit.
    if session.get_nested_transaction() is None:
        _write_pending(session)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


# -- checkpoints ------------------------------------------------------------------------


def current_heads(session: Session) -> list[list[Any]]:
    """[[chain, seq, head_hash], ...] of every chain, in chain order."""
    rows = session.execute(select(AuditChainHead.chain, AuditChainHead.seq, AuditChainHead.head_hash)
                           .order_by(AuditChainHead.chain))
    return [[int(c), int(s), str(h)] for c, s, h in rows]


def write_checkpoint(session: Session, *, clock: Clock, sign: Callable[[dict[str, Any]], str]) -> AuditCheckpoint:
    """Sign the current chain heads (``sign`` turns claims into a JWS; the caller owns the
    key, since ``common`` knows no signing keys) and store the checkpoint. Flushes."""
    now = clock.now()
    claims = {"iat": int(now.timestamp()), "audit_heads": current_heads(session)}
    row = AuditCheckpoint(at=now, jws=sign(claims))
    session.add(row)
    session.flush()
    return row


# -- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenLink:
    chain: int
    seq: int
    problem: str
    event_id: int | None = None
    checkpoint_id: int | None = None
    # 1-based line of the archived checkpoint (``audit verify --checkpoint FILE``).
    archive_line: int | None = None


@dataclass
class VerificationReport:
    chains: int = 0
    events: int = 0
    checkpoints: int = 0
    archived_checkpoints: int = 0
    # Chains verified from a retention anchor rather than from the genesis hash.
    anchored_chains: int = 0
    broken: list[BrokenLink] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken

    @property
    def first_broken(self) -> BrokenLink | None:
        return min(self.broken, key=lambda b: (b.chain, b.seq)) if self.broken else None

    def as_dict(self) -> dict[str, Any]:
        first = self.first_broken
        return {
            "ok": self.ok,
            "chains": self.chains,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "archived_checkpoints": self.archived_checkpoints,
            "anchored_chains": self.anchored_chains,
            "first_broken": asdict(first) if first else None,
            "broken": [asdict(b) for b in sorted(self.broken, key=lambda b: (b.chain, b.seq))],
        }


_PROBLEMS = {
    "modified": "the event's content does not match its hash",
    "prev_hash": "the event does not link to the previous event's hash",
    "missing": "events are missing (sequence gap)",
    "truncated": "the chain ends before its head row (tail deleted)",
    "head_hash": "the head row does not match the last event",
    "beyond_head": "events after the head row (head rewound or rows appended outside the trail)",
    "head_missing": "the chain has events but no head row",
    "checkpoint_signature": "a checkpoint's signature does not verify",
    "checkpoint_mismatch": "the chain no longer holds an event a signed checkpoint recorded",
    "archive_signature": "an archived checkpoint's signature does not verify",
    "archive_mismatch": "the chain no longer holds an event an archived checkpoint recorded (tail truncated?)",
    "anchor_signature": "a retention anchor is not vouched for by a valid signed checkpoint",
}


def describe(problem: str) -> str:
    return _PROBLEMS.get(problem, problem)


ClaimsOf = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class _Expected:
    """One (seq, hash) a signed checkpoint says a chain contains."""

    digest: str
    checkpoint_id: int | None = None
    archive_line: int | None = None

    def broken(self, chain: int, seq: int, event_id: int | None) -> BrokenLink:
        problem = "checkpoint_mismatch" if self.archive_line is None else "archive_mismatch"
        return BrokenLink(chain, seq, problem, event_id, self.checkpoint_id, self.archive_line)


@dataclass(frozen=True)
class _Anchor:
    seq: int
    hash: str


def read_checkpoint_archive(text: str) -> list[str]:
    """The checkpoint JWSs of an archive file: one per line, either the compact JWS or the
    JSON line ``audit checkpoint --json`` prints (its ``jws`` member); blank lines and
    ``#`` comments are skipped. Raises ``ValueError`` for any other line."""
    out: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            out.append("")  # keeps list index + 1 == file line
            continue
        if line.startswith("{"):
            try:
                line = str(json.loads(line)["jws"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"line {number}: not a checkpoint") from exc
        if line.count(".") != 2:
            raise ValueError(f"line {number}: not a compact JWS")
        out.append(line)
    return out


def _heads_of(claims: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    return [(int(c), int(s), str(h)) for c, s, h in claims.get("audit_heads", [])]


def _anchors(
    session: Session, claims_of: ClaimsOf | None, report: VerificationReport, flag: Callable[[BrokenLink], None]
) -> dict[int, _Anchor]:
    """Retention anchors; each must be one of the heads its own signed checkpoint lists."""
    anchors: dict[int, _Anchor] = {}
    for row in session.scalars(select(AuditChainAnchor).order_by(AuditChainAnchor.chain)):
        chain, seq = int(row.chain), int(row.seq)
        anchors[chain] = _Anchor(seq, row.hash)
        if claims_of is not None:
            claims = claims_of(row.jws)
            if claims is None or (chain, seq, row.hash) not in _heads_of(claims):
                flag(BrokenLink(chain, seq, "anchor_signature", None, int(row.checkpoint_id)))
    report.anchored_chains = len(anchors)
    return anchors


def _expectations(
    session: Session,
    claims_of: ClaimsOf | None,
    archived: Sequence[str],
    report: VerificationReport,
) -> dict[tuple[int, int], list[_Expected]]:
    """(chain, seq) → the hashes signed checkpoints (database and archive) recorded there."""
    expected: dict[tuple[int, int], list[_Expected]] = {}

    def add(claims: Mapping[str, Any], checkpoint_id: int | None = None, archive_line: int | None = None) -> None:
        for chain, seq, digest in _heads_of(claims):
            if seq > 0:
                expected.setdefault((chain, seq), []).append(_Expected(digest, checkpoint_id, archive_line))

    if claims_of is None:
        return expected
    for cp_id, jws in session.execute(select(AuditCheckpoint.id, AuditCheckpoint.jws).order_by(AuditCheckpoint.id)):
        report.checkpoints += 1
        claims = claims_of(jws)
        if claims is None:
            report.broken.append(BrokenLink(-1, 0, "checkpoint_signature", checkpoint_id=int(cp_id)))
        else:
            add(claims, checkpoint_id=int(cp_id))
    for line, jws in enumerate(archived, 1):
        if not jws:
            continue
        report.archived_checkpoints += 1
        claims = claims_of(jws)
        if claims is None:
            report.broken.append(BrokenLink(-1, 0, "archive_signature", archive_line=line))
        else:
            add(claims, archive_line=line)
    return expected


def verify_trail(
    session: Session,
    *,
    checkpoint_claims: ClaimsOf | None = None,
    archived: Sequence[str] = (),
    batch: int = 1000,
) -> VerificationReport:
    """Walk every chain in seq order (from its retention anchor, else from the genesis
    hash), recomputing hashes; compare each chain's end with its head row and with every
    signed checkpoint, those in the database and ``archived`` ones kept outside it (a
    tail truncated together with its head and the database checkpoints still shows).
    ``checkpoint_claims`` returns the verified claims of a checkpoint JWS, or None when its
    signature is bad; it is required with ``archived``. Reports the first broken link of
    each chain; reads only."""
    if archived and checkpoint_claims is None:
        raise ValueError("archived checkpoints need checkpoint_claims to verify their signatures")
    report = VerificationReport()
    heads = {int(c): (int(s), str(h)) for c, s, h in current_heads(session)}
    broken: dict[int, BrokenLink] = {}

    def flag(link: BrokenLink) -> None:
        broken.setdefault(link.chain, link)

    anchors = _anchors(session, checkpoint_claims, report, flag)
    expected = _expectations(session, checkpoint_claims, archived, report)
    last: dict[int, tuple[int, str]] = {c: (a.seq, a.hash) for c, a in anchors.items()}
    seen_expected: set[tuple[int, int]] = set()

    # Plain rows, streamed: nothing accumulates in the identity map on a large trail.
    rows = session.execute(
        select(*_EVENTS.c).order_by(AuditEvent.chain, AuditEvent.seq).execution_options(yield_per=batch)
    ).mappings()
    for chain, group in groupby(rows, key=lambda r: int(r["chain"])):
        anchor = anchors.get(chain)
        prev_seq, prev_hash = (anchor.seq, anchor.hash) if anchor else (0, GENESIS)
        for ev in group:
            report.events += 1
            seq = int(ev["seq"])
            if seq != prev_seq + 1:
                flag(BrokenLink(chain, prev_seq + 1, "missing", ev["id"]))
            elif ev["prev_hash"] != prev_hash:
                flag(BrokenLink(chain, seq, "prev_hash", ev["id"]))
            if entry_hash(cast(Mapping[str, Any], ev)) != ev["hash"]:
                flag(BrokenLink(chain, seq, "modified", ev["id"]))
            for mark in expected.get((chain, seq), ()):
                seen_expected.add((chain, seq))
                if mark.digest != ev["hash"]:
                    flag(mark.broken(chain, seq, ev["id"]))
            prev_seq, prev_hash = seq, ev["hash"]
        last[chain] = (prev_seq, prev_hash)

    for (chain, seq), marks in expected.items():
        if (chain, seq) in seen_expected:
            continue
        anchor = anchors.get(chain)
        for mark in marks:
            # Pruned (retention): only the anchor itself can still be compared.
            if anchor is not None and seq < anchor.seq:
                continue
            if anchor is not None and seq == anchor.seq and mark.digest == anchor.hash:
                continue
            flag(mark.broken(chain, seq, None))
    for chain in sorted(set(heads) | set(last)):
        end_seq, end_hash = last.get(chain, (0, GENESIS))
        if chain not in heads:
            flag(BrokenLink(chain, end_seq, "head_missing"))
            continue
        head_seq, head_hash = heads[chain]
        if head_seq > end_seq:
            flag(BrokenLink(chain, end_seq + 1, "truncated"))
        elif head_seq < end_seq:
            flag(BrokenLink(chain, head_seq + 1, "beyond_head"))
        elif head_hash != end_hash:
            flag(BrokenLink(chain, head_seq, "head_hash"))
    report.chains = len(set(heads) | set(last))
    report.broken.extend(broken.values())
    return report


# -- retention ----------------------------------------------------------------------------


class AuditTrailBrokenError(DomainError):
    code = "audit_trail_broken"
    public_message = "The audit trail does not verify; nothing was pruned. Run `audit verify`."
    status_code = 409


@dataclass(frozen=True)
class PruneResult:
    checkpoint_id: int | None
    checkpoint_at: datetime | None
    events: int
    chains: list[int]


def prune_trail(session: Session, *, before: datetime, checkpoint_claims: ClaimsOf, clock: Clock) -> PruneResult:
    """Retention (PIPL Art. 19): delete, chain by chain, the events up to the newest valid
    signed checkpoint taken at or before ``before``; that checkpoint's head becomes the
    chain's anchor, from which ``verify_trail`` still proves everything kept. Only whole
    prefixes go, so no link is ever cut inside what remains. Raises
    ``AuditTrailBrokenError`` when the trail does not verify first (pruning must not
    destroy the evidence of tampering). Deletes rows, upserts anchors, flushes; the caller
    records the ``audit.prune`` event."""
    if not verify_trail(session, checkpoint_claims=checkpoint_claims).ok:
        raise AuditTrailBrokenError("verification failed before pruning")
    stmt = (select(AuditCheckpoint).where(AuditCheckpoint.at <= before)
            .order_by(AuditCheckpoint.at.desc(), AuditCheckpoint.id.desc()))
    for checkpoint in session.scalars(stmt):
        claims = checkpoint_claims(checkpoint.jws)
        if claims is not None:
            return _prune_to(session, checkpoint, _heads_of(claims), clock.now())
    return PruneResult(None, None, 0, [])


def _prune_to(session: Session, checkpoint: AuditCheckpoint, heads: list[tuple[int, int, str]],
              now: datetime) -> PruneResult:
    deleted, chains = 0, []
    for chain, seq, digest in heads:
        anchor = session.get(AuditChainAnchor, chain)
        if seq == 0 or (anchor is not None and anchor.seq >= seq):
            continue
        if anchor is None:
            anchor = AuditChainAnchor(chain=chain)
            session.add(anchor)
        anchor.seq, anchor.hash, anchor.checkpoint_id = seq, digest, checkpoint.id
        anchor.jws, anchor.pruned_at = checkpoint.jws, now
        # The anchor first: the append-only trigger allows deleting only anchored rows.
        session.flush()
        result = session.execute(_EVENTS.delete().where(_EVENTS.c.chain == chain, _EVENTS.c.seq <= seq))
        deleted += int(getattr(result, "rowcount", 0) or 0)
        chains.append(chain)
    return PruneResult(checkpoint.id, checkpoint.at, deleted, chains)


def events_of(session: Session, subject: str, limit: int = 100) -> Iterable[AuditEvent]:
    """The latest events about or by one pseudonymous subject (investigations)."""
    stmt = (select(AuditEvent).where((AuditEvent.target == subject) | (AuditEvent.actor == subject))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))
    return list(session.scalars(stmt))
