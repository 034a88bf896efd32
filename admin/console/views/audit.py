"""Audit area (issue 6, 电子监察): search the trail (GET form, paged, newest first), export
the same filters as JSON lines, the chain verification status with "verify now", and
the active alerts. Every call goes through ``admin.audit_ops.AuditTrailOperations``,
which checks ``audit.read`` and audits searches, exports and verifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import Response, request, stream_with_context, url_for

from admin.audit import AuditQueryError, parse_audit_query
from admin.roles import Permission
from common.audit import OUTCOMES
from common.db import db

from .. import bp
from ..web import admin_services, current_admin, provider, render, requires, see_other

# Policy: the console shows and reads times in China Standard Time (UTC+8, no daylight
# saving), with the offset printed; the API and exports use UTC.
CONSOLE_TZ = timezone(timedelta(hours=8))
FILTERS = ("since", "until", "actor", "target", "action", "client_id", "outcome")
PAGE_SIZE = 50
# Prefixes offered in the action field (a datalist: free text stays possible).
ACTION_PREFIXES = ("login.", "login.failure", "mfa.failure", "realname.verify", "certificate.", "consent.",
                   "token.", "logout.", "admin.", "audit.")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(CONSOLE_TZ).strftime("%Y-%m-%d %H:%M:%S %z") if moment else ""


def _filters() -> dict[str, str]:
    """The filters as typed (shown back in the form, carried by paging and export links)."""
    return {name: request.args.get(name, "").strip()[:200] for name in FILTERS if request.args.get(name, "").strip()}


def _page(status: int = 200, **ctx: Any) -> Any:
    return render("admin/audit.html", status, filters=_filters(), outcomes=OUTCOMES, prefixes=ACTION_PREFIXES,
                  when=_when, **ctx)


@bp.get("/audit")
@requires(Permission.AUDIT_READ)
def audit() -> Any:
    filters = _filters()
    cursor = request.args.get("cursor") or None
    try:
        query = parse_audit_query(filters, default_tz=CONSOLE_TZ)
        page = admin_services().audit.search(current_admin().actor, query, cursor=cursor, limit=PAGE_SIZE)
    except AuditQueryError as exc:
        db.session.rollback()
        return _page(400, page=None, error=exc.public_message, error_field=exc.field)
    db.session.commit()  # the admin.audit.search event
    return _page(page=page, cursor=cursor, error=None, error_field=None)


@bp.get("/audit/export")
@requires(Permission.AUDIT_READ)
def audit_export() -> Any:
    # A bad filter raises AuditQueryError before anything is sent: the error page (400).
    query = parse_audit_query(_filters(), default_tz=CONSOLE_TZ)
    lines = admin_services().audit.export(current_admin().actor, query)
    db.session.commit()  # the admin.audit.export event, before the first line
    name = f"audit-{provider().clock.now().astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    return Response(stream_with_context(lines), mimetype="application/x-ndjson",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.get("/audit/chain")
@requires(Permission.AUDIT_READ)
def audit_chain() -> Any:
    status = admin_services().audit.status(current_admin().actor)
    return render("admin/audit_chain.html", trail=status, when=_when, done=request.args.get("done"))


@bp.post("/audit/verify")
@requires(Permission.AUDIT_READ)
def audit_verify() -> Any:
    # Reads every chain: offered as a button, never run by a page load.
    admin_services().audit.verify(current_admin().actor)
    db.session.commit()  # the admin.audit.verify event, which the status page shows
    return see_other(url_for("console.audit_chain", done="verified"))


@bp.get("/alerts")
@requires(Permission.AUDIT_READ)
def alerts() -> Any:
    rows = admin_services().audit.alerts(current_admin().actor)
    return render("admin/alerts.html", alerts=rows, when=_when)
