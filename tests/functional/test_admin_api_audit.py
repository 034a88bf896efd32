"""Audit area of the admin API (issue 6, 电子监察): search with filters and keyset paging,
JSON-lines export, chain status, on-demand verification that reports a tampered row,
alerts; bad filters are RFC 9457 problems naming the field; reading the trail is itself
audited with its filters and without personal data."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text, update

from common.audit import chain_for
from common.db import db
from common.models import AuditEvent
from tests.functional._admin_api import API, bearer, issued_token, make_admin, make_admin_client


@pytest.fixture
def auditor(services, clock) -> dict[str, str]:
    tool = make_admin_client(services)
    admin = make_admin(services, clock, "inspector", "auditor")
    return bearer(issued_token(services, clock, tool.client_id, admin.account_id))


def _record(services: Any, clock: Any, action: str, n: int = 1, **fields: Any) -> None:
    for _ in range(n):
        clock.advance(1)
        services.audit.record(action, **{"actor": "anonymous", **fields})
    db.session.commit()


def _admin_events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_search_filters_newest_first_and_pages_with_cursor_and_link(http, services, clock, auditor):
    _record(services, clock, "login.success", 2, actor="account:901", client_id="portal-a")
    _record(services, clock, "login.failure", 5, outcome="denied", reason="invalid_credentials",
            target="account:7", client_id="portal-a", ip="192.0.2.9")
    _record(services, clock, "token.issue", 2, actor="client:portal-b", target="account:901", client_id="portal-b")

    first = http.get(f"{API}/audit/events", query_string={"action": "login.fail", "outcome": "denied", "limit": 2},
                     headers=auditor)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert [e["action"] for e in body["items"]] == ["login.failure"] * 2
    assert body["items"][0]["at"] > body["items"][1]["at"]  # newest first
    assert body["items"][0]["target"] == "account:7" and body["items"][0]["reason"] == "invalid_credentials"
    # RFC 8288 Link with the same filters and the cursor.
    link = first.headers["Link"]
    assert link.endswith('>; rel="next"')
    args = parse_qs(urlsplit(link[1:link.index(">")]).query)
    assert args["action"] == ["login.fail"] and args["outcome"] == ["denied"] and args["cursor"] == [body["next_cursor"]]

    seen = [e["id"] for e in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        page = http.get(f"{API}/audit/events", query_string={"action": "login.fail", "outcome": "denied", "limit": 2,
                                                              "cursor": cursor}, headers=auditor).get_json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5 and seen == sorted(seen, reverse=True)

    by_client = http.get(f"{API}/audit/events", query_string={"client_id": "portal-b"}, headers=auditor).get_json()
    assert {e["action"] for e in by_client["items"]} == {"token.issue"} and len(by_client["items"]) == 2
    by_actor = http.get(f"{API}/audit/events", query_string={"actor": "account:901"}, headers=auditor).get_json()
    assert [e["action"] for e in by_actor["items"]] == ["login.success"] * 2
    by_target = http.get(f"{API}/audit/events", query_string={"target": "account:901"}, headers=auditor).get_json()
    assert [e["action"] for e in by_target["items"]] == ["token.issue"] * 2

    # The searches are audited, with their filters and nothing else.
    searches = _admin_events("admin.audit.search")
    assert len(searches) == 6
    assert searches[0].details == {"action": "login.fail", "outcome": "denied", "next_page": False, "events": 2}
    assert searches[1].details["next_page"] is True
    assert searches[0].actor.startswith("account:") and searches[0].ip_hash


def test_time_range_is_inclusive_since_exclusive_until(http, services, clock, auditor):
    start = clock.now()
    _record(services, clock, "consent.grant", 4, actor="account:3")  # at start+1s .. start+4s
    since = (start + timedelta(seconds=2)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    until = (start + timedelta(seconds=4)).isoformat()
    resp = http.get(f"{API}/audit/events", query_string={"since": since, "until": until, "action": "consent."},
                    headers=auditor)
    assert resp.status_code == 200, resp.get_json()
    times = [e["at"] for e in resp.get_json()["items"]]
    assert len(times) == 2


def test_export_streams_ndjson_lines_oldest_first_and_is_audited(http, services, clock, auditor):
    _record(services, clock, "login.failure", 3, outcome="denied", reason="invalid_credentials", target="account:8")
    _record(services, clock, "login.success", 2, actor="account:8")
    resp = http.get(f"{API}/audit/export", query_string={"target": "account:8"}, headers=auditor)
    assert resp.status_code == 200
    assert resp.mimetype == "application/x-ndjson"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert resp.headers["Cache-Control"] == "no-store"
    lines = resp.get_data(as_text=True).splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == 3 and {e["target"] for e in events} == {"account:8"}
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)  # oldest first
    assert all(len(e["hash"]) == 64 and len(e["prev_hash"]) == 64 for e in events)
    exports = _admin_events("admin.audit.export")
    assert len(exports) == 1 and exports[0].details == {"target": "account:8"}


def test_export_in_batches_returns_every_event_once(services, clock):
    from admin.audit import AuditAdminService, AuditQuery

    _record(services, clock, "token.issue", 7, actor="client:batch", client_id="batch")
    clock.advance(-3)  # events sharing a timestamp straddle a batch boundary
    _record(services, clock, "token.issue", 2, actor="client:batch", client_id="batch")
    lines = list(AuditAdminService(db.session, clock=clock).export(AuditQuery(client_id="batch"), batch=3))
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 9


@pytest.mark.parametrize(("params", "field", "code"), [
    ({"since": "yesterday"}, "since", "invalid_audit_query"),
    ({"since": "2026-01-31T08:00:00"}, "since", "invalid_audit_query"),  # no offset
    ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since", "invalid_audit_query"),
    ({"actor": "zhangsan"}, "actor", "invalid_input"),  # not a pseudonymous id (schema)
    ({"actor": "account:13800138000"}, "actor", "invalid_audit_query"),  # shaped like a phone number
    ({"action": "110101199003071234"}, "action", "invalid_audit_query"),  # shaped like an ID number
    ({"outcome": "maybe"}, "outcome", "invalid_input"),
    ({"limit": "0"}, "limit", "invalid_input"),
    ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor", "invalid_audit_query"),
])
def test_bad_filters_are_problems_naming_the_field(http, auditor, params, field, code):
    for path in ("/audit/events", "/audit/export"):
        if path.endswith("export") and field in ("limit", "cursor"):
            continue
        resp = http.get(API + path, query_string=params, headers=auditor)
        assert resp.status_code == 422, (path, params, resp.status_code)
        assert resp.mimetype == "application/problem+json"
        problem = resp.get_json()
        assert problem["code"] == code and problem["status"] == 422
        assert [e["field"] for e in problem["errors"]] == [field] and problem["errors"][0]["detail"]
    # Nothing was searched or exported, so nothing (and no personal data) was recorded.
    assert _admin_events("admin.audit.search") == [] and _admin_events("admin.audit.export") == []


def test_status_and_verify_report_a_tampered_row(http, services, clock, auditor):
    _record(services, clock, "login.success", 4, actor="account:42", client_id="portal")
    status = http.get(f"{API}/audit/status", headers=auditor).get_json()
    assert status["last_verification_at"] is None and status["chains"] >= 1

    ok = http.post(f"{API}/audit/verify", headers=auditor)
    assert ok.status_code == 200 and ok.get_json()["ok"] is True and ok.get_json()["broken"] == []
    assert http.get(f"{API}/audit/status", headers=auditor).get_json()["last_verification_ok"] is True

    # A database superuser rewrites one event: in replica mode the append-only trigger
    # does not fire (as tests/integration/test_audit_archive_retention.py does).
    chain = chain_for("account:42")
    victim_id, victim_seq = db.session.execute(
        select(AuditEvent.id, AuditEvent.seq).where(AuditEvent.chain == chain, AuditEvent.actor == "account:42")
        .order_by(AuditEvent.seq).offset(1).limit(1)).one()
    db.session.execute(text("SET LOCAL session_replication_role = replica"))
    db.session.execute(update(AuditEvent).where(AuditEvent.id == victim_id).values(client_id="other-portal"))
    db.session.commit()

    report = http.post(f"{API}/audit/verify", headers=auditor).get_json()
    assert report["ok"] is False
    assert {"chain": chain, "seq": victim_seq, "problem": "modified"}.items() <= report["first_broken"].items()
    status = http.get(f"{API}/audit/status", headers=auditor).get_json()
    assert status["last_verification_ok"] is False and status["last_verification_problem"] == "modified"
    verifications = _admin_events("admin.audit.verify")
    assert [v.outcome for v in verifications] == ["ok", "error"]
    assert verifications[1].reason == "modified" and f"{chain}:{victim_seq}:modified" in verifications[1].details["broken"]


def test_alerts_list_a_burst_of_failed_logins(http, services, clock, auditor):
    assert http.get(f"{API}/alerts", headers=auditor).get_json() == {"items": []}
    _record(services, clock, "login.failure", 10, outcome="denied", reason="invalid_credentials", target="account:9")
    items = http.get(f"{API}/alerts", headers=auditor).get_json()["items"]
    burst = [a for a in items if a["kind"] == "login_failures_account"]
    assert burst == [{"kind": "login_failures_account", "key": "account:9", "count": 10, "threshold": 10,
                      "window_seconds": 900, "last_at": burst[0]["last_at"], "reason": None}]


def test_roles_without_audit_read_are_refused(http, services, clock):
    tool = make_admin_client(services)
    admin = make_admin(services, clock, "portals", "client-admin")
    headers = bearer(issued_token(services, clock, tool.client_id, admin.account_id))
    for method, path in (("GET", "/audit/events"), ("GET", "/audit/export"), ("GET", "/audit/status"),
                         ("POST", "/audit/verify"), ("GET", "/alerts")):
        resp = http.open(API + path, method=method, headers=headers)
        assert resp.status_code == 403 and resp.get_json()["code"] == "forbidden", path
    assert _admin_events("admin.audit.verify") == []


def test_openapi_declares_the_export_as_ndjson(http):
    document = http.get(f"{API}/openapi.json").get_json()
    export = document["paths"][f"{API}/audit/export"]["get"]
    assert list(export["responses"]["200"]["content"]) == ["application/x-ndjson"]
    assert export["x-permission"] == "audit.read"
    verify = document["paths"][f"{API}/audit/verify"]["post"]
    assert "Expensive" in verify["summary"] and verify["x-permission"] == "audit.read"
