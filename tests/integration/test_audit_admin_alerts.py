"""The administrators' view of the audit trail (issue 6, admin/audit.py) on real PostgreSQL:
search by time, actor, action prefix, client and outcome with keyset pagination, JSON-lines
export, the status summary, the four alerts (failed-login bursts per account and per IP,
verification volume per client, certificates rejected for revocation, failing back-channel
logouts) within their windows, and the alerts on /metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from admin.audit import AlertThresholds, AuditAdminService, AuditQuery, AuditQueryError
from common.db import db
from common.models import AuditEvent
from idp.models import LogoutDelivery
from tests.conftest import make_settings
from tests.helpers import Browser, form_field

THRESHOLDS = AlertThresholds(
    login_failures_window=600, login_failures_per_account=3, login_failures_per_ip=4,
    verifications_window=3600, verifications_per_client=5,
    certificate_revoked_window=3600, certificate_revoked_min=2,
    logout_failures_window=3600, logout_failures_min=1,
)


@pytest.fixture
def settings(tmp_path, pg_template):
    return make_settings(tmp_path, pg_template, alert_login_failures_window=600, alert_login_failures_per_account=3,
                         alert_login_failures_per_ip=4, alert_metrics_cache_seconds=0)


@pytest.fixture
def audit(app, clock):
    return AuditAdminService(db.session, clock=clock, thresholds=THRESHOLDS)


def _record(services, clock, action: str, n: int = 1, *, step: float = 1, **kw) -> None:
    for _ in range(n):
        services.audit.record(action, **kw)
        clock.advance(step)
    db.session.commit()


# -- search ----------------------------------------------------------------------------------


def test_search_filters_and_pages_newest_first(services, clock, audit):
    start = clock.now()
    _record(services, clock, "login.success", 4, actor="account:1", client_id="portal-a", ip="192.0.2.1")
    _record(services, clock, "login.failure", 2, actor="anonymous", outcome="denied", reason="invalid_credentials",
            client_id="portal-b")
    _record(services, clock, "token.issue", 3, actor="client:portal-a", target="account:1", client_id="portal-a")

    seen, cursor = [], None
    while True:
        page = audit.search(AuditQuery(client_id="portal-a"), cursor=cursor, limit=3)
        seen.extend(page.events)
        cursor = page.next_cursor
        if cursor is None:
            break
        # Appending while paging does not shift pages (keyset, not OFFSET).
        _record(services, clock, "login.success", 1, actor="account:1", client_id="portal-a")
    assert len(seen) == 7 and len({e.id for e in seen}) == 7
    assert [e.at for e in seen] == sorted((e.at for e in seen), reverse=True)
    assert [e.action for e in seen] == ["token.issue"] * 3 + ["login.success"] * 4

    assert [e.action for e in audit.search(AuditQuery(action="login.")).events].count("login.failure") == 2
    assert {e.action for e in audit.search(AuditQuery(action="login.fail")).events} == {"login.failure"}
    # The prefix is literal: LIKE wildcards in it match nothing extra.
    assert audit.search(AuditQuery(action="login%")).events == []
    denied = audit.search(AuditQuery(outcome="denied")).events
    assert {(e.outcome, e.reason) for e in denied} == {("denied", "invalid_credentials")}
    assert len(audit.search(AuditQuery(actor="client:portal-a")).events) == 3
    assert len(audit.search(AuditQuery(target="account:1")).events) == 3
    window = AuditQuery(since=start + timedelta(seconds=4), until=start + timedelta(seconds=6))
    assert [e.action for e in audit.search(window).events] == ["login.failure", "login.failure"]
    as_dict = denied[0].as_dict()
    assert as_dict["at"].endswith("+00:00") and len(as_dict["hash"]) == 64


@pytest.mark.parametrize(("query", "kwargs"), [
    (AuditQuery(since=datetime(2026, 1, 1)), {}),  # naive # noqa: DTZ001
    (AuditQuery(since=datetime(2026, 2, 1, tzinfo=UTC), until=datetime(2026, 1, 1, tzinfo=UTC)), {}),
    (AuditQuery(outcome="maybe"), {}),
    (AuditQuery(actor="x" * 200), {}),
    (AuditQuery(), {"limit": 0}),
    (AuditQuery(), {"limit": 501}),
    (AuditQuery(), {"cursor": "not-a-cursor"}),
])
def test_bad_search_parameters_are_refused(audit, query, kwargs):
    with pytest.raises(AuditQueryError) as info:
        audit.search(query, **kwargs)
    assert info.value.status_code == 400 and info.value.public_message


def test_export_streams_json_lines_oldest_first(services, clock, audit):
    _record(services, clock, "login.success", 3, actor="account:5")
    _record(services, clock, "token.revoke", 1, actor="client:c", client_id="c")
    lines = list(audit.export(AuditQuery(actor="account:5"), batch=2))
    events = [json.loads(line) for line in lines]
    assert all(line.endswith("\n") for line in lines)
    assert [e["details"] for e in events] == [{}, {}, {}]
    assert [e["seq"] for e in events] == [1, 2, 3]
    with pytest.raises(AuditQueryError):
        audit.export(AuditQuery(outcome="nope"))


# -- status ------------------------------------------------------------------------------------


def test_status_summarises_heads_checkpoints_and_the_last_verification(app, services, clock, audit):
    empty = audit.status()
    assert (empty.chains, empty.events_retained, empty.last_checkpoint_id, empty.last_verification_ok) == (
        0, 0, None, None)
    _record(services, clock, "login.success", 3, actor="account:1")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    assert runner.invoke(args=["audit", "verify", "--record"]).exit_code == 0
    status = audit.status()
    assert status.last_checkpoint_id is not None and status.last_verification_ok is True
    # 3 logins + the checkpoint event + the verification event.
    assert status.events_retained == 5
    assert status.as_dict()["last_verification_at"] is not None


# -- alerts ------------------------------------------------------------------------------------


def test_failed_login_bursts_per_account_and_per_ip(services, clock, audit):
    _record(services, clock, "login.failure", 2, actor="anonymous", target="account:7", outcome="denied",
            reason="invalid_credentials", ip="198.51.100.1")
    _record(services, clock, "mfa.failure", 1, actor="account:7", outcome="denied", reason="bad_code",
            ip="198.51.100.2")
    # Unknown identifiers carry no account: they count for the IP only.
    _record(services, clock, "login.failure", 3, actor="anonymous", outcome="denied", reason="invalid_credentials",
            ip="198.51.100.1")
    # Successes never count.
    _record(services, clock, "login.success", 5, actor="account:8", ip="198.51.100.1")
    alerts = audit.failed_login_alerts()
    by_kind = {(a.kind, a.key): a.count for a in alerts}
    ip_keys = [k for kind, k in by_kind if kind == "login_failures_ip"]
    assert by_kind[("login_failures_account", "account:7")] == 3
    assert len(ip_keys) == 1 and ip_keys[0].startswith("ip:") and "198.51.100.1" not in ip_keys[0]
    assert by_kind[("login_failures_ip", ip_keys[0])] == 5
    assert ("login_failures_account", "account:8") not in by_kind
    assert ("login_failures_account", "anonymous") not in by_kind

    # The window ends: no alert any more.
    clock.advance(601)
    assert audit.failed_login_alerts() == []


def test_failed_logins_through_http_raise_the_account_alert(http, oauth_client, user, services, audit):
    browser = Browser(http)
    for _ in range(3):
        page = browser.follow(browser.authorize(oauth_client, challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"))
        body = page.get_data(as_text=True)
        resp = http.post("/login", data={"csrf_token": form_field(body, "csrf_token"),
                                         "interaction": form_field(body, "interaction"),
                                         "identifier": user.username, "password": "wrong password!"})
        assert resp.status_code == 401
    account_id = services.accounts.find_by_identifier(user.username).id
    failures = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "login.failure")).all()
    assert {f.target for f in failures} == {f"account:{account_id}"}
    keys = {(a.kind, a.key) for a in audit.alerts()}
    assert ("login_failures_account", f"account:{account_id}") in keys


def test_verification_volume_per_client(services, clock, audit):
    _record(services, clock, "realname.verify", 5, actor="account:1", client_id="busy", reason="match")
    _record(services, clock, "realname.verify", 4, actor="account:2", client_id="quiet", reason="match")
    alerts = audit.verification_alerts()
    assert [(a.key, a.count, a.threshold) for a in alerts] == [("client:busy", 5, 5)]
    clock.advance(3600)
    assert audit.verification_alerts() == []


def test_certificates_rejected_for_revocation_per_ca(services, clock, audit):
    _record(services, clock, "certificate.rejected", 2, actor="anonymous", outcome="denied", reason="revoked",
            details={"ca_id": 3})
    _record(services, clock, "certificate.rejected", 1, actor="anonymous", outcome="denied", reason="revoked",
            details={"ca_id": 4})
    _record(services, clock, "certificate.rejected", 5, actor="anonymous", outcome="denied", reason="expired",
            details={"ca_id": 4})
    alerts = audit.certificate_revoked_alerts()
    assert [(a.kind, a.key, a.count, a.reason) for a in alerts] == [("certificate_revoked", "ca:3", 2, "revoked")]


def test_failing_backchannel_logout_deliveries_per_client(clock, audit):
    now = clock.now()

    def delivery(client_id: str, state: str, attempts: int, age: float = 0) -> LogoutDelivery:
        return LogoutDelivery(client_id=client_id, sid="s", subject="sub", state=state, attempts=attempts,
                              created_at=now - timedelta(seconds=age), next_attempt_at=now)

    db.session.add_all([
        delivery("flaky", "failed", 5), delivery("flaky", "pending", 2),
        delivery("fine", "delivered", 1), delivery("fine", "pending", 0),
        delivery("old", "failed", 5, age=7200),
    ])
    db.session.commit()
    alerts = audit.logout_delivery_alerts()
    assert [(a.key, a.count) for a in alerts] == [("client:flaky", 2)]


def test_alerts_on_metrics(http, services, clock):
    for _ in range(3):
        services.audit.record("login.failure", actor="anonymous", target="account:7", outcome="denied",
                              reason="invalid_credentials", ip="203.0.113.9")
    db.session.add(LogoutDelivery(client_id="flaky", sid="s", subject="x", state="failed", attempts=5,
                                  created_at=clock.now(), next_attempt_at=clock.now()))
    db.session.commit()
    body = http.get("/metrics").get_data(as_text=True)
    assert "yiwang_audit_metrics_up 1.0" in body
    assert 'yiwang_audit_alerts{kind="login_failures_account"} 1.0' in body
    assert 'yiwang_audit_alerts{kind="login_failures_ip"} 0.0' in body
    assert 'yiwang_audit_alerts{kind="logout_delivery_failed"} 1.0' in body
    assert 'yiwang_audit_alert_client_events{client_id="flaky",kind="logout_delivery_failed"} 1.0' in body
    # Accounts and addresses stay out of the metrics.
    assert "account:7" not in body
    assert "yiwang_audit_events_retained 3.0" in body


def test_alerts_stay_on_metrics_after_other_requests(http):
    # Recording a request used to reset the audit collector, so the audit gauges vanished
    # from /metrics after the first request the process served.
    assert "yiwang_audit_metrics_up 1.0" in http.get("/metrics").get_data(as_text=True)
    assert http.get("/healthz").status_code == 200
    assert "yiwang_audit_metrics_up 1.0" in http.get("/metrics").get_data(as_text=True)


def test_registry_verification_during_a_login_is_counted_for_its_client(http, services, oauth_client, user, audit):
    from realname.importer import ImportReport, RegistryImporter, RegistryRow
    from tests.helpers import pkce_pair

    number = "11010519491231002X"
    RegistryImporter(db.session, services.p.hasher, services.p.clock.now()).load(
        [RegistryRow("张三", number, "13800138001")], ImportReport())
    db.session.commit()
    _, challenge = pkce_pair()
    resp = http.get("/authorize", query_string={
        "response_type": "code", "client_id": oauth_client.client_id, "redirect_uri": oauth_client.redirect_uri,
        "scope": "openid", "state": "s", "nonce": "n", "code_challenge": challenge,
        "code_challenge_method": "S256", "acr_values": "cn-l1"})
    html = http.get(resp.headers["Location"]).get_data(as_text=True)
    resp = http.post("/login", data={"csrf_token": form_field(html, "csrf_token"),
                                     "interaction": form_field(html, "interaction"),
                                     "identifier": user.username, "password": user.password})
    html = http.get(http.get(resp.headers["Location"]).headers["Location"]).get_data(as_text=True)
    resp = http.post("/account/verify", data={"csrf_token": form_field(html, "csrf_token"),
                                              "interaction": form_field(html, "interaction"),
                                              "name": "张三", "id_number": number})
    assert resp.status_code == 303
    verified = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "realname.verify")).one()
    assert (verified.client_id, verified.outcome) == (oauth_client.client_id, "ok")
    assert audit.search(AuditQuery(action="realname.", client_id=oauth_client.client_id)).events
