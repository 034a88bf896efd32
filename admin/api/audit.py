"""The audit trail in the admin API (issue 6, 电子监察): search and export events, the
trail's status, on-demand verification, and the alerts. Reading the trail is itself audited."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from ..audit import ALERT_KINDS, AuditQuery, parse_audit_query
from ..roles import Permission
from .bodies import NO_CONTROL, Body, Omittable, OneOf, Params, QueryInt, SchemaExtra, Timestamp
from .operations import NDJSON, Call, Page, Reply, Route, page_reply

AUDIT_ERRORS = (400, 401, 403)
# A pseudonymous id of the trail: never a name, phone or ID number.
AuditId = Annotated[str, StringConstraints(
    min_length=1, max_length=96,
    pattern="^(account|client|admin|legal_person|credential|delivery):[A-Za-z0-9_.@:-]{1,80}$|^(system|anonymous)$"),
    NO_CONTROL]
# RFC 3339 §5.6: API date-times carry their offset; ``parse_audit_query`` reads them.
DateTimeText = Annotated[str, StringConstraints(max_length=64), NO_CONTROL, SchemaExtra(format="date-time")]
Outcome = Literal["ok", "denied", "error"]


class AuditEvent(Body):
    """One audit event: pseudonymous ids and reason codes only, with its chain position and hashes so an
    exported event can be checked against the chain."""

    id: int
    at: Timestamp
    chain: int
    seq: int
    actor: str
    action: str
    target: str | None
    outcome: Outcome
    reason: str | None
    client_id: str | None
    ip_hash: str | None = Field(description="Keyed hash of the client IP.")
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditEventPage(Page):
    items: list[AuditEvent]


class AuditTrailStatus(Body):
    chains: int
    events_retained: int
    anchored_chains: int = Field(description="Chains pruned to a signed retention anchor.")
    last_checkpoint_id: int | None
    last_checkpoint_at: Timestamp | None
    last_prune_at: Timestamp | None
    last_verification_at: Timestamp | None
    last_verification_ok: bool | None
    last_verification_problem: str | None


class AuditBrokenLink(Body):
    """Where the chain breaks; chain -1 for a checkpoint or archive problem."""

    chain: int
    seq: int
    problem: str
    event_id: int | None
    checkpoint_id: int | None
    archive_line: int | None


class AuditVerification(Body):
    ok: bool
    chains: int
    events: int
    checkpoints: int
    archived_checkpoints: int
    anchored_chains: int
    first_broken: AuditBrokenLink | None
    broken: list[AuditBrokenLink]


class Alert(Body):
    """A count at or above its threshold within the window ending now; key is pseudonymous."""

    kind: Annotated[str, OneOf(ALERT_KINDS)]
    key: str
    count: int
    threshold: int
    window_seconds: int
    last_at: Timestamp | None
    reason: str | None


class AlertList(Body):
    items: list[Alert]


class AuditFilters(Params):
    since: Omittable[DateTimeText] = Field(default=None, description=(
        "First moment included (RFC 3339 date-time with offset)"))
    until: Omittable[DateTimeText] = Field(default=None, description="End, excluded")
    actor: Omittable[AuditId] = Field(default=None, description=(
        "Exact actor, a pseudonymous id (account:42, client:<id>, system)"))
    target: Omittable[AuditId] = Field(default=None, description="Exact target, a pseudonymous id")
    action: Omittable[Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]] = Field(
        default=None, description="Action prefix: login. finds login.success and login.failure")
    client_id: Omittable[Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]] = Field(
        default=None, description="Exact client_id")
    outcome: Omittable[Outcome] = Field(default=None, description="Outcome")

    def query(self) -> AuditQuery:
        return parse_audit_query({k: getattr(self, k) for k in AuditFilters.model_fields})


class AuditSearch(AuditFilters):
    limit: QueryInt = Field(default=50, ge=1, le=500, description="Page size (default 50)")
    cursor: Omittable[Annotated[str, StringConstraints(pattern="^[A-Za-z0-9_-]{1,200}$")]] = Field(
        default=None, description="next_cursor of the previous page")


def list_audit_events(call: Call) -> Reply:
    params = call.params_as(AuditSearch)
    page = call.admin.audit.search(call.actor, params.query(), cursor=params.cursor, limit=params.limit)
    items = [AuditEvent.model_validate(e.as_dict()) for e in page.events]
    return page_reply(AuditEventPage(items=items, next_cursor=page.next_cursor), "/audit/events", params)


def export_audit_events(call: Call) -> Reply:
    # The lines are AuditEventView.as_dict(), the same data as AuditEvent in a page.
    lines = call.admin.audit.export(call.actor, call.params_as(AuditFilters).query())
    return Reply(200, None, {"Content-Disposition": 'attachment; filename="audit-events.jsonl"'}, stream=lines,
                 media_type=NDJSON)


def audit_status(call: Call) -> Reply:
    return Reply(200, AuditTrailStatus.model_validate(call.admin.audit.status(call.actor).as_dict()))


def verify_audit_trail(call: Call) -> Reply:
    return Reply(200, AuditVerification.model_validate(call.admin.audit.verify(call.actor).as_dict()))


def list_alerts(call: Call) -> Reply:
    return Reply(200, AlertList(items=[Alert.model_validate(a.as_dict()) for a in call.admin.audit.alerts(call.actor)]))


ROUTES = (
    Route("GET", "/audit/events", "listAuditEvents",
          "Search the audit trail, newest first (keyset pagination); the search is itself audited",
          Permission.AUDIT_READ, list_audit_events,
          (200, AuditEventPage, "One page of events; next_cursor and a Link rel=next when more"), params=AuditSearch),
    Route("GET", "/audit/export", "exportAuditEvents",
          "Export matching events as JSON lines (one AuditEvent per line), oldest first, streamed; audited",
          Permission.AUDIT_READ, export_audit_events,
          (200, AuditEvent, "application/x-ndjson: one AuditEvent object per line"), params=AuditFilters,
          media_type=NDJSON),
    Route("GET", "/audit/status", "getAuditStatus",
          "Chains, events kept, last signed checkpoint, last prune and last verification (cheap)",
          Permission.AUDIT_READ, audit_status, (200, AuditTrailStatus, "The summary"), errors=AUDIT_ERRORS),
    Route("POST", "/audit/verify", "verifyAuditTrail",
          "Verify every chain now against the signed checkpoints in the database. Expensive: reads the whole "
          "trail; run on demand, not on a schedule (cron runs `flask audit verify --record`). Audited",
          Permission.AUDIT_READ, verify_audit_trail,
          (200, AuditVerification, "The report (ok false names each broken link)"), errors=AUDIT_ERRORS),
    Route("GET", "/alerts", "listAlerts",
          "Active alerts: failed-login bursts, verification volume, revoked certificates, failing logouts",
          Permission.AUDIT_READ, list_alerts, (200, AlertList, "Every alert active now"), errors=AUDIT_ERRORS),
)
