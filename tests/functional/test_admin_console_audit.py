"""Console area "Audit" (issue 6, 电子监察): the GET search form (time range in UTC+8, actor,
action prefix, client, outcome) with a paged table newest first, the export link with
the same filters, the chain status with "verify now" (CSRF, 303) that reports a tampered
row, the alerts page and the alert count in the navigation; searches are audited."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, text, update

from admin.console.views.audit import CONSOLE_TZ, PAGE_SIZE
from common.audit import chain_for
from common.db import db
from common.models import AuditEvent

from ._console import console_login, csrf_of, make_admin


def _record(services: Any, clock: Any, action: str, n: int = 1, **fields: Any) -> None:
    for _ in range(n):
        clock.advance(1)
        services.audit.record(action, **{"actor": "anonymous", **fields})
    db.session.commit()


def _rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-event-id="(\d+)" data-action="([^"]+)"', html)


def _auditor(http: Any, services: Any, clock: Any) -> None:
    console_login(http, make_admin(services, clock, "inspector", ["auditor"]), clock)


def test_search_filters_and_pages_newest_first(http, services, clock):
    _record(services, clock, "login.failure", PAGE_SIZE + 2, outcome="denied", reason="invalid_credentials",
            target="account:907", client_id="portal-a")
    _record(services, clock, "login.success", 3, actor="account:907", client_id="portal-a")
    _auditor(http, services, clock)

    page = http.get("/admin/audit", query_string={"action": "login.failure", "outcome": "denied",
                                                   "client_id": "portal-a"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = _rows(html)
    assert len(rows) == PAGE_SIZE and {a for _, a in rows} == {"login.failure"}
    ids = [int(i) for i, _ in rows]
    assert ids == sorted(ids, reverse=True)  # newest first
    # The form shows the filters back; the next page keeps them.
    assert 'value="login.failure"' in html and '<option value="denied" selected>' in html
    next_url = unescape(re.search(r'href="([^"]+)" id="next-page"', html).group(1))  # type: ignore[union-attr]
    assert parse_qs(urlsplit(next_url).query)["action"] == ["login.failure"]
    second = http.get(next_url).get_data(as_text=True)
    more = [int(i) for i, _ in _rows(second)]
    assert len(more) == 2 and max(more) < min(ids) and 'id="next-page"' not in second and 'id="first-page"' in second

    search = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.audit.search")
                                .order_by(AuditEvent.id)).all()
    assert [e.details for e in search] == [
        {"action": "login.failure", "outcome": "denied", "client_id": "portal-a", "next_page": False,
         "events": PAGE_SIZE},
        {"action": "login.failure", "outcome": "denied", "client_id": "portal-a", "next_page": True, "events": 2},
    ]


def test_time_range_is_read_in_china_standard_time(http, services, clock):
    _auditor(http, services, clock)
    start = clock.now()
    _record(services, clock, "consent.grant", 5, actor="account:908")  # start+1s .. start+5s
    local = (start + timedelta(seconds=2)).astimezone(CONSOLE_TZ)
    since = local.strftime("%Y-%m-%dT%H:%M:%S")  # what <input type=datetime-local step=1> sends
    until = (local + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
    html = http.get("/admin/audit", query_string={"since": since, "until": until, "actor": "account:908"}
                    ).get_data(as_text=True)
    assert len(_rows(html)) == 2
    assert local.strftime("%Y-%m-%d %H:%M:%S +0800") in html


def test_export_link_carries_the_filters_and_downloads_json_lines(http, services, clock):
    _record(services, clock, "login.failure", 3, outcome="denied", reason="locked", target="account:909")
    _record(services, clock, "login.success", 1, actor="account:909")
    _auditor(http, services, clock)
    html = http.get("/admin/audit", query_string={"target": "account:909"}).get_data(as_text=True)
    href = unescape(re.search(r'href="([^"]+)" id="export"', html).group(1))  # type: ignore[union-attr]
    assert urlsplit(href).path == "/admin/audit/export" and parse_qs(urlsplit(href).query) == {"target": ["account:909"]}
    resp = http.get(href)
    assert resp.status_code == 200 and resp.mimetype == "application/x-ndjson"
    assert re.fullmatch(r'attachment; filename="audit-\d{8}T\d{6}Z\.jsonl"', resp.headers["Content-Disposition"])
    events = [json.loads(line) for line in resp.get_data(as_text=True).splitlines()]
    assert [e["reason"] for e in events] == ["locked"] * 3 and {e["target"] for e in events} == {"account:909"}
    exported = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.audit.export")).one()
    assert exported.details == {"target": "account:909"}


def test_bad_filters_show_a_form_error_and_record_nothing(http, services, clock):
    _auditor(http, services, clock)
    for args, field in (({"since": "31/01/2026"}, "since"), ({"actor": "13800138000"}, "actor"),
                        ({"actor": "zhangsan"}, "actor"), ({"outcome": "perhaps"}, "outcome"),
                        ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "since"),
                        ({"cursor": "garbage"}, "cursor")):
        resp = http.get("/admin/audit", query_string=args)
        assert resp.status_code == 400, args
        html = resp.get_data(as_text=True)
        assert f'id="audit-error" data-field="{field}"' in html and 'id="events"' not in html, args
    export = http.get("/admin/audit/export", query_string={"actor": "13800138000"})
    assert export.status_code == 400 and 'id="error"' in export.get_data(as_text=True)
    recorded = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("admin.audit.%"))).all()
    assert recorded == []
    assert not any("13800138000" in json.dumps(d) for d in db.session.scalars(select(AuditEvent.details)))


def test_verify_now_needs_csrf_and_reports_a_tampered_row(http, services, clock):
    _record(services, clock, "login.success", 3, actor="account:910")
    _auditor(http, services, clock)
    page = http.get("/admin/audit/chain").get_data(as_text=True)
    assert 'data-ok="none"' in page and 'id="verify-now"' in page

    assert http.post("/admin/audit/verify", data={}).status_code == 400  # no CSRF token
    resp = http.post("/admin/audit/verify", data={"csrf_token": csrf_of(http, "/admin/audit/chain")})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/audit/chain?done=verified")
    assert 'data-ok="yes"' in http.get(resp.headers["Location"]).get_data(as_text=True)

    chain = chain_for("account:910")
    victim = db.session.scalar(select(AuditEvent.id).where(AuditEvent.actor == "account:910").limit(1))
    db.session.execute(text("SET LOCAL session_replication_role = replica"))
    db.session.execute(update(AuditEvent).where(AuditEvent.id == victim).values(reason="rewritten"))
    db.session.commit()
    resp = http.post("/admin/audit/verify", data={"csrf_token": csrf_of(http, "/admin/audit/chain")})
    html = http.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'data-ok="no"' in html and 'data-problem="modified"' in html
    verify = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "admin.audit.verify")
                                .order_by(AuditEvent.id)).all()
    assert [v.outcome for v in verify] == ["ok", "error"] and verify[1].details["broken_chains"] == 1
    assert verify[1].details["broken"][0].startswith(f"{chain}:")


def test_alerts_page_and_navigation_badge(http, services, clock):
    _record(services, clock, "login.failure", 10, outcome="denied", reason="invalid_credentials",
            target="account:911", ip="198.51.100.4")
    _auditor(http, services, clock)
    home = http.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="nav-alerts">[^<]+<span class="badge" id="badge-alerts">1</span>', home)
    html = http.get("/admin/alerts").get_data(as_text=True)
    row = re.search(r'<tr data-kind="login_failures_account" data-key="account:911">.*?</tr>', html, re.S)
    assert row and '<td class="count">10</td>' in row.group(0)
    # The account links to its denied events.
    link = urlsplit(unescape(re.search(r'<a href="([^"]+)"', row.group(0)).group(1)))  # type: ignore[union-attr]
    assert link.path == "/admin/audit" and parse_qs(link.query) == {"target": ["account:911"], "outcome": ["denied"]}


def test_no_alert_no_badge_and_other_roles_do_not_see_the_area(http, services, clock):
    _auditor(http, services, clock)
    home = http.get("/admin/").get_data(as_text=True)
    assert 'id="nav-audit"' in home and 'id="nav-alerts"' in home and 'id="badge-alerts"' not in home
    assert 'id="no-alerts"' in http.get("/admin/alerts").get_data(as_text=True)
    http.post("/admin/logout", data={"csrf_token": csrf_of(http)})
    console_login(http, make_admin(services, clock, "portals", ["client-admin"]), clock)
    home = http.get("/admin/").get_data(as_text=True)
    assert 'id="nav-audit"' not in home and 'id="nav-alerts"' not in home
    assert http.get("/admin/audit").status_code == 403
