"""The audit trail for administrators (issue 6, 电子监察 real-time monitoring): search with
keyset pagination, JSON-lines export, verification status and alerts over ``audit_events``.

Pure queries over the caller's session: no Flask, nothing written (the console or API
records its own ``admin.*`` event for each search or export). Every query is bounded:
search and alerts by a limit and, for alerts, a recent time window served by the
``(action, at)`` index; the status summary reads the 16 head rows, not the event table.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from common.audit import (
    CHECKPOINT_TYP,
    OUTCOMES,
    ClaimsOf,
    VerificationReport,
    is_pseudonymous_id,
    looks_personal,
    verify_trail,
)
from common.clock import Clock
from common.errors import ValidationError
from common.models import AuditChainAnchor, AuditChainHead, AuditCheckpoint, AuditEvent
from idp.keys import KeyService
from idp.models import LogoutDelivery

# Which recorded actions each alert counts (see the ``audit.record`` calls in idp/ and
# realname/): password and second-factor failures, registry verifications (二要素 calls),
# certificate rejections for revocation, back-channel logout deliveries.
LOGIN_FAILURE_ACTIONS = ("login.failure", "mfa.failure")
VERIFICATION_ACTIONS = ("realname.verify",)
CERTIFICATE_REJECTED_ACTION = "certificate.rejected"
REVOCATION_REASONS = ("revoked", "revocation_unknown")
VERIFY_ACTION = "audit.verify"
# Verifications recorded by ``flask audit verify --record`` (cron) and run on demand by an
# administrator (console or API, ``admin.audit.verify``): the status shows the latest.
VERIFY_ACTIONS = (VERIFY_ACTION, "admin.audit.verify")
TEXT_FILTERS = ("actor", "target", "action", "client_id")

ALERT_KINDS = (
    "login_failures_account",
    "login_failures_ip",
    "verification_volume",
    "certificate_revoked",
    "logout_delivery_failed",
)
MAX_PAGE = 500
# At most this many keys per alert kind: an attack from many addresses must not turn the
# alert query into a scan of the window's every group.
MAX_ALERTS_PER_KIND = 100


class AuditQueryError(ValidationError):
    """A search or export filter is malformed; ``field`` names it (the API reports it in
    the problem's ``errors``, the console next to the form field)."""

    code = "invalid_audit_query"
    public_message = "The audit search parameters are not valid."

    def __init__(self, detail: str = "", *, public_message: str | None = None, field: str = "") -> None:
        super().__init__(detail, public_message=public_message)
        self.field = field


@dataclass(frozen=True)
class AuditQuery:
    """Filters of a search or export; all optional and combined with AND. ``since`` is
    inclusive, ``until`` exclusive, both timezone-aware. ``action`` matches a prefix
    (``login.`` finds ``login.success`` and ``login.failure``)."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    target: str | None = None
    action: str | None = None
    client_id: str | None = None
    outcome: str | None = None

    def validate(self) -> None:
        """Raise ``AuditQueryError`` (naming the field) for naive times, an inverted range,
        an unknown outcome, oversized strings, an actor or target that is not a
        pseudonymous id, or a filter shaped like personal data. Policy: the search itself
        is audited with its filters (``admin.audit.search``), so a filter may never carry
        a phone or ID number; the trail holds none to find anyway."""
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise AuditQueryError("naive datetime", field=name,
                                      public_message="Times need a timezone (e.g. Z or +08:00).")
        if self.since and self.until and self.since >= self.until:
            raise AuditQueryError("since >= until", field="since", public_message="'since' must be before 'until'.")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise AuditQueryError("outcome", field="outcome",
                                  public_message="'outcome' must be one of ok, denied, error.")
        for name in TEXT_FILTERS:
            value = getattr(self, name)
            if value is None:
                continue
            if not value or len(value) > 96:
                raise AuditQueryError("filter length", field=name, public_message="A filter is empty or too long.")
            if looks_personal(value):
                raise AuditQueryError("personal data in filter", field=name,
                                      public_message="Filters take pseudonymous ids, never phone or ID numbers.")
            if name in ("actor", "target") and not is_pseudonymous_id(value):
                raise AuditQueryError("not a pseudonymous id", field=name,
                                      public_message=f"'{name}' is a pseudonymous id such as account:42, "
                                                     "client:<client_id> or system.")

    def as_details(self) -> dict[str, str]:
        """The filters as audit details of the search that used them (validated first, so
        they hold pseudonymous ids and codes only)."""
        out = {name: getattr(self, name) for name in TEXT_FILTERS if getattr(self, name) is not None}
        for name in ("since", "until", "outcome"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
        return out

    def conditions(self) -> list[ColumnElement[bool]]:
        ev = AuditEvent
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(ev.at >= self.since)
        if self.until is not None:
            out.append(ev.at < self.until)
        if self.actor is not None:
            out.append(ev.actor == self.actor)
        if self.target is not None:
            out.append(ev.target == self.target)
        if self.action is not None:
            out.append(ev.action.startswith(self.action, autoescape=True))
        if self.client_id is not None:
            out.append(ev.client_id == self.client_id)
        if self.outcome is not None:
            out.append(ev.outcome == self.outcome)
        return out


def _moment(name: str, text: str | None, default_tz: tzinfo | None) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AuditQueryError("not ISO 8601", field=name,
                              public_message=f"'{name}' is not an ISO 8601 date-time (e.g. 2026-01-31T08:00:00+08:00)."
                              ) from None
    if moment.tzinfo is None:
        if default_tz is None:
            raise AuditQueryError("naive datetime", field=name,
                                  public_message="Times need a timezone (e.g. Z or +08:00).")
        moment = moment.replace(tzinfo=default_tz)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise AuditQueryError("out of range", field=name, public_message=f"'{name}' is out of range.") from None


def parse_audit_query(values: Mapping[str, str | None], *, default_tz: tzinfo | None = None) -> AuditQuery:
    """Filters from text (query string or form): empty values are absent; ``since`` and
    ``until`` are ISO 8601, taken in ``default_tz`` when they carry no offset (the console
    form) or refused without one (the API: RFC 3339 date-times have an offset). Raises
    ``AuditQueryError`` naming the field; the values are validated by ``validate``."""

    def text(name: str) -> str | None:
        value = (values.get(name) or "").strip()
        return value or None

    return AuditQuery(
        since=_moment("since", values.get("since"), default_tz),
        until=_moment("until", values.get("until"), default_tz),
        actor=text("actor"),
        target=text("target"),
        action=text("action"),
        client_id=text("client_id"),
        outcome=text("outcome"),
    )


@dataclass(frozen=True)
class AuditEventView:
    """One event as administrators see it: pseudonymous ids and reason codes only (the
    trail never holds personal data values), plus the chain position and hashes so an
    exported event can be checked against the chain."""

    id: int
    at: datetime
    chain: int
    seq: int
    actor: str
    action: str
    target: str | None
    outcome: str
    reason: str | None
    client_id: str | None
    ip_hash: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> AuditEventView:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.astimezone(UTC).isoformat(timespec="microseconds")
        return data


@dataclass(frozen=True)
class AuditPage:
    """One page of a search, newest first; ``next_cursor`` is None on the last page."""

    events: list[AuditEventView]
    next_cursor: str | None


@dataclass(frozen=True)
class AlertThresholds:
    """Alert thresholds and windows (seconds), from ``config.Settings.alert_thresholds``."""

    login_failures_window: int = 900
    login_failures_per_account: int = 10
    login_failures_per_ip: int = 30
    verifications_window: int = 3600
    verifications_per_client: int = 1000
    certificate_revoked_window: int = 86400
    certificate_revoked_min: int = 1
    logout_failures_window: int = 86400
    logout_failures_min: int = 1


@dataclass(frozen=True)
class Alert:
    """A count at or above its threshold within the window ending now. ``key`` is
    pseudonymous: ``account:<id>``, ``ip:<keyed hash>``, ``client:<client_id>`` (or
    ``client:-`` for events without a client), ``ca:<id>``."""

    kind: str
    key: str
    count: int
    threshold: int
    window_seconds: int
    last_at: datetime | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_at"] = self.last_at.astimezone(UTC).isoformat() if self.last_at else None
        return data


@dataclass(frozen=True)
class TrailStatus:
    """Cheap summary for the console and metrics: read from head, anchor and checkpoint
    rows and the last recorded ``audit.verify`` event, never by walking the chains."""

    chains: int
    events_retained: int
    anchored_chains: int
    last_checkpoint_id: int | None
    last_checkpoint_at: datetime | None
    last_prune_at: datetime | None
    last_verification_at: datetime | None
    last_verification_ok: bool | None
    last_verification_problem: str | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("last_checkpoint_at", "last_prune_at", "last_verification_at"):
            value = getattr(self, key)
            data[key] = value.astimezone(UTC).isoformat() if value else None
        return data


def encode_cursor(at: datetime, event_id: int) -> str:
    raw = f"{at.astimezone(UTC).isoformat(timespec='microseconds')}|{event_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises ``AuditQueryError`` for a cursor this service did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, _, id_text = raw.partition("|")
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, int(id_text)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise AuditQueryError("bad cursor", field="cursor", public_message="The page cursor is not valid.") from exc


def checkpoint_verifier(keys: KeyService, issuer: str) -> ClaimsOf:
    """Verified claims of a signed checkpoint JWS (``common.audit.write_checkpoint``), or
    None. Keys are rebuilt from their encrypted private part (``key_for_verification``):
    a key planted in the key table cannot vouch for a rewritten trail without the data
    key. Used by ``flask audit verify``/``prune`` and by on-demand verification."""
    cache: dict[str, Any] = {}

    def resolve(obj: Any) -> Any:
        kid = obj.headers().get("kid")
        if not isinstance(kid, str):
            raise ValueError("no kid")
        if kid not in cache:
            cache[kid] = keys.key_for_verification(kid)
        if cache[kid] is None:
            raise ValueError("unknown kid")
        return cache[kid]

    def claims_of(jws: str) -> dict[str, Any] | None:
        try:
            token = jwt.decode(jws, resolve, algorithms=["ES256", "RS256"])
        except (JoseError, ValueError, KeyError, TypeError):
            return None
        if token.header.get("typ") != CHECKPOINT_TYP or token.claims.get("iss") != issuer:
            return None
        return dict(token.claims)

    return claims_of


class AuditAdminService:
    """Search, export, status and alerts over the audit trail. Reads only; never commits."""

    def __init__(self, session: Session, *, clock: Clock, thresholds: AlertThresholds | None = None) -> None:
        self._session = session
        self._clock = clock
        self._t = thresholds or AlertThresholds()

    # -- search and export ------------------------------------------------------------

    def search(self, query: AuditQuery, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """Events matching ``query``, newest first (by time, then id), ``limit`` (1..500) per
        page; pass the returned ``next_cursor`` for the next page (keyset pagination:
        stable while events are appended, no OFFSET scans). Raises ``AuditQueryError``."""
        query.validate()
        if not 1 <= limit <= MAX_PAGE:
            raise AuditQueryError("limit", field="limit", public_message=f"'limit' must be between 1 and {MAX_PAGE}.")
        ev = AuditEvent
        conditions = query.conditions()
        if cursor is not None:
            at, event_id = decode_cursor(cursor)
            conditions.append(or_(ev.at < at, and_(ev.at == at, ev.id < event_id)))
        stmt = (select(*AuditEvent.__table__.c).where(*conditions)
                .order_by(ev.at.desc(), ev.id.desc()).limit(limit + 1))
        rows = [AuditEventView.of(r) for r in self._session.execute(stmt).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        return AuditPage(rows, encode_cursor(rows[-1].at, rows[-1].id) if more and rows else None)

    def export(self, query: AuditQuery, *, batch: int = 1000) -> Iterator[str]:
        """Events matching ``query`` as JSON lines (one event per line, with its trailing
        newline), oldest first, read ``batch`` rows at a time so an export of months
        never sits in memory. Validates before the first line (raises ``AuditQueryError``).

        Why keyset batches rather than one server-side cursor: a download is consumed at
        the client's pace, across the request's commit, and may be abandoned half-way; a
        batch query holds no cursor between lines, so a slow or vanished reader leaves
        nothing open in the database."""
        query.validate()
        ev = AuditEvent

        def lines() -> Iterator[str]:
            after: tuple[datetime, int] | None = None
            while True:
                conditions = query.conditions()
                if after is not None:
                    conditions.append(or_(ev.at > after[0], and_(ev.at == after[0], ev.id > after[1])))
                stmt = (select(*AuditEvent.__table__.c).where(*conditions)
                        .order_by(ev.at, ev.id).limit(batch))
                rows = [AuditEventView.of(r) for r in self._session.execute(stmt).mappings()]
                for row in rows:
                    yield json.dumps(row.as_dict(), ensure_ascii=False, sort_keys=True) + "\n"
                if len(rows) < batch:
                    return
                after = (rows[-1].at, rows[-1].id)

        return lines()

    # -- verification -------------------------------------------------------------------

    def status(self) -> TrailStatus:
        """Chain count, events kept (sum of head seqs minus pruned prefixes), last signed
        checkpoint, last prune and the result of the last recorded verification
        (``flask audit verify --record``, run from cron, or one an administrator ran)."""
        s = self._session
        chains, head_total = s.execute(select(func.count(), func.coalesce(func.sum(AuditChainHead.seq), 0))).one()
        anchored, pruned_total, last_prune = s.execute(
            select(func.count(), func.coalesce(func.sum(AuditChainAnchor.seq), 0), func.max(AuditChainAnchor.pruned_at))
        ).one()
        checkpoint = s.execute(select(AuditCheckpoint.id, AuditCheckpoint.at)
                               .order_by(AuditCheckpoint.id.desc()).limit(1)).first()
        last_verify = s.execute(
            select(AuditEvent.at, AuditEvent.outcome, AuditEvent.reason)
            .where(AuditEvent.action.in_(VERIFY_ACTIONS)).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(1)
        ).first()
        return TrailStatus(
            chains=int(chains),
            events_retained=int(head_total) - int(pruned_total),
            anchored_chains=int(anchored),
            last_checkpoint_id=int(checkpoint[0]) if checkpoint else None,
            last_checkpoint_at=checkpoint[1] if checkpoint else None,
            last_prune_at=last_prune,
            last_verification_at=last_verify[0] if last_verify else None,
            last_verification_ok=(last_verify[1] == "ok") if last_verify else None,
            last_verification_problem=last_verify[2] if last_verify else None,
        )

    def verify(self, checkpoint_claims: ClaimsOf, archived: Sequence[str] = ()) -> VerificationReport:
        """Walk every chain now (``common.audit.verify_trail``): reads the whole trail, so
        the console should offer it on demand to a superadmin/auditor, not on every page."""
        return verify_trail(self._session, checkpoint_claims=checkpoint_claims, archived=archived)

    # -- alerts -------------------------------------------------------------------------

    def alerts(self) -> list[Alert]:
        """Every alert active now, in ``ALERT_KINDS`` order, largest counts first."""
        return [
            *self.failed_login_alerts(),
            *self.verification_alerts(),
            *self.certificate_revoked_alerts(),
            *self.logout_delivery_alerts(),
        ]

    def _since(self, window: int) -> datetime:
        return self._clock.now() - timedelta(seconds=window)

    def _grouped(self, kind: str, key: Any, where: Sequence[ColumnElement[bool]], threshold: int,
                 window: int, prefix: str) -> list[Alert]:
        ev = AuditEvent
        n = func.count()
        stmt = (select(key, n, func.max(ev.at)).where(*where).group_by(key).having(n >= threshold)
                .order_by(n.desc()).limit(MAX_ALERTS_PER_KIND))
        return [Alert(kind, f"{prefix}{k}", int(c), threshold, window, last)
                for k, c, last in self._session.execute(stmt)]

    def failed_login_alerts(self) -> list[Alert]:
        """Bursts of failed password / second-factor logins per account (the event's
        subject; failures for unknown identifiers have none) and per client IP (its keyed
        hash) within ``login_failures_window``."""
        t, ev = self._t, AuditEvent
        base = [ev.action.in_(LOGIN_FAILURE_ACTIONS), ev.at >= self._since(t.login_failures_window),
                ev.outcome == "denied"]
        subject = func.coalesce(ev.target, ev.actor)
        per_account = self._grouped("login_failures_account", subject, [*base, subject != "anonymous"],
                                    t.login_failures_per_account, t.login_failures_window, "")
        per_ip = self._grouped("login_failures_ip", ev.ip_hash, [*base, ev.ip_hash.is_not(None)],
                               t.login_failures_per_ip, t.login_failures_window, "ip:")
        return per_account + per_ip

    def verification_alerts(self) -> list[Alert]:
        """Registry verification calls per client above ``verifications_per_client`` within
        ``verifications_window`` (events without a client are grouped as ``client:-``)."""
        t, ev = self._t, AuditEvent
        return self._grouped("verification_volume", func.coalesce(ev.client_id, "-"),
                             [ev.action.in_(VERIFICATION_ACTIONS), ev.at >= self._since(t.verifications_window)],
                             t.verifications_per_client, t.verifications_window, "client:")

    def certificate_revoked_alerts(self) -> list[Alert]:
        """Certificate logins rejected as revoked (or with unknown revocation status) per
        CA within ``certificate_revoked_window``: a revoked UKey still in use."""
        t, ev = self._t, AuditEvent
        ca = ev.details["ca_id"].as_string()
        n = func.count()
        stmt = (
            select(ca, ev.reason, n, func.max(ev.at))
            .where(ev.action == CERTIFICATE_REJECTED_ACTION, ev.reason.in_(REVOCATION_REASONS),
                   ev.at >= self._since(t.certificate_revoked_window))
            .group_by(ca, ev.reason).having(n >= t.certificate_revoked_min)
            .order_by(n.desc()).limit(MAX_ALERTS_PER_KIND)
        )
        return [Alert("certificate_revoked", f"ca:{ca_id if ca_id is not None else '-'}", int(c),
                      t.certificate_revoked_min, t.certificate_revoked_window, last, reason)
                for ca_id, reason, c, last in self._session.execute(stmt)]

    def logout_delivery_alerts(self) -> list[Alert]:
        """Back-channel logout deliveries (OIDC Back-Channel Logout 1.0 §2.7) per client
        created within ``logout_failures_window`` that were given up (``failed``) or are
        still being retried after a failed attempt, from ``idp_logout_deliveries``."""
        t, d = self._t, LogoutDelivery
        n = func.count()
        failing = or_(d.state == "failed", and_(d.state == "pending", d.attempts > 0))
        stmt = (
            select(d.client_id, n, func.max(d.created_at))
            .where(d.created_at >= self._since(t.logout_failures_window), failing)
            .group_by(d.client_id).having(n >= t.logout_failures_min)
            .order_by(n.desc()).limit(MAX_ALERTS_PER_KIND)
        )
        return [Alert("logout_delivery_failed", f"client:{client_id}", int(c), t.logout_failures_min,
                      t.logout_failures_window, last)
                for client_id, c, last in self._session.execute(stmt)]
