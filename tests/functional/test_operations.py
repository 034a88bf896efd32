"""Operations through HTTP (DESIGN.md §7): liveness and readiness probes, Prometheus
metrics, security headers on every page (SECURITY.md "Pages and sessions"), and JSON logs
that hold no secrets or personal data (OWASP ASVS 5 §16.2.5)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from common.db import db
from common.store import RedisStore
from config.app import create_app
from config.logging import JsonFormatter
from tests.conftest import make_settings
from tests.helpers import Browser, form_field, pkce_pair, query_of

from ._support import bearer, csrf_of, isolate_requests

CLOSED_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def _request_contexts(request):
    # Only for tests that use the shared test app: the others build their own app and
    # must not have the conftest transaction replace its database session.
    if "app" in request.fixturenames:
        isolate_requests(request.getfixturevalue("app"))


# -- probes ---------------------------------------------------------------------------


def test_healthz(http):
    resp = http.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_readyz_checks_database_and_store(http):
    resp = http.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "checks": {"database": True, "store": True, "signing_keys": True}}


def _other_app(tmp_path, database_url, clock, password_hasher, store):
    settings = make_settings(tmp_path, database_url)
    return create_app(settings, store=store, clock=clock, passwords=password_hasher)


def test_readyz_503_when_store_unreachable(tmp_path, pg_template, clock, password_hasher):
    store = RedisStore(CLOSED_REDIS, prefix="yiwang-test-unreachable:")
    application = _other_app(tmp_path, pg_template, clock, password_hasher, store)
    try:
        resp = application.test_client().get("/readyz")
        assert resp.status_code == 503
        # (The template database holds no signing keys: each test creates its own.)
        assert resp.get_json() == {"status": "unavailable",
                                   "checks": {"database": True, "store": False, "signing_keys": False}}
        # Liveness does not depend on dependencies: the process itself is fine.
        assert application.test_client().get("/healthz").status_code == 200
    finally:
        store.close()
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def test_readyz_503_when_database_unreachable(tmp_path, store, clock, password_hasher):
    application = _other_app(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/none", clock, password_hasher,
                             store)
    try:
        resp = application.test_client().get("/readyz")
        assert resp.status_code == 503
        assert resp.get_json()["checks"] == {"database": False, "store": True, "signing_keys": False}
    finally:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


# -- metrics --------------------------------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_logins_and_tokens(http, oauth_client, user):
    browser = Browser(http)
    _, challenge = pkce_pair()
    page = http.get(browser.authorize(oauth_client, challenge=challenge).headers["Location"])
    http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                              "interaction": form_field(page.get_data(as_text=True), "interaction"),
                              "identifier": "alice", "password": "wrong password!"})
    tokens = browser.tokens(oauth_client, user, scope="openid profile offline_access")
    assert http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                     auth=oauth_client.auth).status_code == 200
    assert http.post("/token", data={"grant_type": "client_credentials"}, auth=oauth_client.auth).status_code == 200

    resp = http.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    assert _metric(text, "yiwang_http_requests_total", endpoint="idp.token", method="POST", status="200") == 3
    assert _metric(text, "yiwang_http_requests_total", endpoint="idp.login_submit", method="POST", status="401") == 1
    assert _metric(text, "yiwang_logins_total", outcome="success") == 1
    assert _metric(text, "yiwang_logins_total", outcome="failure") == 1
    # Every grant that issues tokens is counted (this counter was never incremented before).
    assert _metric(text, "yiwang_tokens_issued_total", grant_type="authorization_code") == 1
    assert _metric(text, "yiwang_tokens_issued_total", grant_type="refresh_token") == 1
    assert _metric(text, "yiwang_tokens_issued_total", grant_type="client_credentials") == 1
    assert "yiwang_http_request_duration_seconds_bucket" in text


def test_failed_token_request_is_not_counted_as_issued(http, oauth_client):
    resp = http.post("/token", data={"grant_type": "client_credentials"}, auth=(oauth_client.client_id, "wrong"))
    assert resp.status_code == 401
    text = http.get("/metrics").get_data(as_text=True)
    assert _metric(text, "yiwang_tokens_issued_total", grant_type="client_credentials") == 0


# -- who may scrape /metrics (issue 17) --------------------------------------------------

OUTSIDER = "203.0.113.7"
METRICS_TOKEN = "metrics-token-" + "m" * 32


@pytest.fixture
def metrics_app(tmp_path, pg_template, clock, password_hasher, store):
    """``build(**settings)``: an app with its own settings (the shared test app has the defaults)."""
    built = []

    def build(**overrides):
        settings = make_settings(tmp_path, pg_template, **overrides)
        application = create_app(settings, store=store, clock=clock, passwords=password_hasher)
        built.append(application)
        return application.test_client()

    yield build
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def _no_metrics(resp, status: int) -> None:
    assert resp.status_code == status, resp.status_code
    assert b"yiwang_" not in resp.get_data()
    assert resp.headers["Cache-Control"] == "no-store"


def test_metrics_refused_outside_the_allowed_networks(http):
    # Default: loopback only. Before issue 17 anyone could read them.
    _no_metrics(http.get("/metrics", environ_base={"REMOTE_ADDR": OUTSIDER}), 403)
    _no_metrics(http.get("/metrics", environ_base={"REMOTE_ADDR": "10.0.0.5"}), 403)
    assert http.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_metrics_allowed_networks_setting(metrics_app):
    client = metrics_app(metrics_allowed_networks="10.0.0.0/8, 2001:db8::/32")
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "2001:db8::5"}).status_code == 200
    _no_metrics(client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}), 403)
    _no_metrics(client.get("/metrics", environ_base={"REMOTE_ADDR": "11.0.0.1"}), 403)


def test_metrics_token_lets_a_scraper_in_from_anywhere(metrics_app):
    client = metrics_app(metrics_token=METRICS_TOKEN)
    outside = {"REMOTE_ADDR": OUTSIDER}
    resp = client.get("/metrics", environ_base=outside, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status_code == 200 and "yiwang_http_requests_total" in resp.get_data(as_text=True)
    # RFC 6750 §3: no or a wrong token is a 401 with a bearer challenge.
    missing = client.get("/metrics", environ_base=outside)
    _no_metrics(missing, 401)
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    wrong = client.get("/metrics", environ_base=outside, headers={"Authorization": "Bearer nope"})
    assert wrong.headers["WWW-Authenticate"].startswith('Bearer realm="metrics", error="invalid_token"')
    for wrong in (f"Bearer {METRICS_TOKEN}x", "Bearer ", f"Basic {METRICS_TOKEN}", METRICS_TOKEN, "Bearer \u00e9t\u00e9"):
        _no_metrics(client.get("/metrics", environ_base=outside, headers={"Authorization": wrong}), 401)
    # A wrong token is refused from an allowed network too: it is a misconfigured scraper.
    _no_metrics(client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
    assert client.get("/metrics").status_code == 200


def test_metrics_behind_the_proxy_check_the_forwarded_address(metrics_app):
    # README production: nginx on the same host, YIWANG_TRUSTED_PROXIES=1. Every request
    # through the proxy comes from 127.0.0.1; the client is the forwarded address.
    client = metrics_app(trusted_proxies=1)
    _no_metrics(client.get("/metrics", headers={"X-Forwarded-For": OUTSIDER}), 403)
    # A forged entry before the proxy's own is not believed (ProxyFix takes the last hop).
    _no_metrics(client.get("/metrics", headers={"X-Forwarded-For": f"127.0.0.1, {OUTSIDER}"}), 403)
    # Prometheus on the host, scraping the instance directly (no proxy, no header).
    assert client.get("/metrics").status_code == 200


def test_metrics_through_an_undeclared_proxy_are_refused(http):
    # YIWANG_TRUSTED_PROXIES unset but a proxy in front: its loopback address says nothing
    # about the client, so a forwarded request is not taken as coming from loopback.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        _no_metrics(http.get("/metrics", headers={header: OUTSIDER}), 403)


# -- security headers on every page -------------------------------------------------------


def _assert_page_headers(resp) -> None:
    assert resp.mimetype == "text/html", resp.mimetype
    csp = resp.headers["Content-Security-Policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
    # CSP Level 3: no framing, no plugins, no <base> rewriting, no inline script.
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["script-src"] == ["'self'"]
    # RFC 7034 X-Frame-Options for old browsers; nosniff; no Referer leaking codes.
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    # No CORS on browser endpoints (SECURITY.md).
    assert "Access-Control-Allow-Origin" not in resp.headers


def test_security_headers_on_every_html_page(http, oauth_client, user):
    pages = []
    browser = Browser(http)
    pages.append(http.get("/"))
    pages.append(http.get("/login"))
    pages.append(http.get("/login", query_string={"interaction": "expired-or-unknown"}))
    # Unknown client: an error page, never a redirect (RFC 6749 §4.1.2.1).
    pages.append(http.get("/authorize", query_string={"client_id": "nope", "response_type": "code"}))
    _, challenge = pkce_pair()
    login_page = http.get(browser.authorize(oauth_client, challenge=challenge).headers["Location"])
    pages.append(login_page)
    failed = browser.login(login_page, type(user)("alice", "wrong password!"))
    pages.append(failed)
    consent_page = browser.follow(browser.follow(browser.login(failed, user)))
    assert 'name="decision"' in consent_page.get_data(as_text=True)
    pages.append(consent_page)
    pages.append(http.post("/consent", data={"interaction": "x", "csrf_token": "x", "decision": "allow"}))
    pages.append(http.get("/logout"))
    pages.append(http.get("/logout", query_string={"post_logout_redirect_uri": "https://evil.example.test/"}))
    confirm = pages[-2]
    lid = form_field(confirm.get_data(as_text=True), "logout_request")
    pages.append(http.post("/logout/confirm", data={"logout_request": lid, "decision": "logout",
                                                    "csrf_token": csrf_of(confirm)}))
    pages.append(http.get("/"))
    for resp in pages:
        _assert_page_headers(resp)


def test_no_hsts_over_loopback_http(http):
    # HSTS only makes sense over https (RFC 6797 §7.2); the test issuer is http://127.0.0.1.
    assert "Strict-Transport-Security" not in http.get("/login").headers


def test_request_id_echoed(http):
    resp = http.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = http.get("/healthz", headers={"X-Request-Id": "x" * 200})
    assert resp.headers["X-Request-Id"] != "x" * 200


# -- logs -----------------------------------------------------------------------------


def test_json_logs_hold_no_secrets_or_personal_data(http, oauth_client, user, caplog):
    caplog.set_level(logging.INFO)
    browser = Browser(http)
    _, challenge = pkce_pair()
    login_page = http.get(browser.authorize(oauth_client, challenge=challenge).headers["Location"])
    wrong = "Wrong-Password-9f3a"
    browser.login(login_page, type(user)("alice", wrong))
    browser.login(login_page, type(user)("13800138000", wrong))
    query, verifier = browser.code_flow(oauth_client, user, scope="openid profile phone offline_access")
    code = query["code"]
    tokens = http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": oauth_client.redirect_uri, "code_verifier": verifier},
                       auth=oauth_client.auth).get_json()
    assert "access_token" in tokens, tokens
    refreshed = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          auth=oauth_client.auth).get_json()
    info = http.get("/userinfo", headers=bearer(refreshed["access_token"])).get_json()
    assert info["phone_number"] == "+8613800138000" and info["name"] == "张三"
    http.post("/introspect", data={"token": refreshed["access_token"]}, auth=oauth_client.auth)
    # A replayed code is an error path (and revokes the grant): it must not log the code either.
    replay = http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": oauth_client.redirect_uri, "code_verifier": verifier},
                       auth=oauth_client.auth)
    assert replay.status_code == 400
    http.post("/revoke", data={"token": refreshed["refresh_token"]}, auth=oauth_client.auth)
    http.get("/userinfo", headers=bearer(refreshed["access_token"]))
    http.get("/logout", query_string={"id_token_hint": refreshed["id_token"],
                                      "post_logout_redirect_uri": "https://portal.example.test/logged-out",
                                      "state": "st-logout"})

    # The process's log handler is the JSON formatter; format what it received the same way.
    assert any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert len(lines) >= 15
    entries = [json.loads(line) for line in lines]
    # Every request is logged with its request id (DESIGN.md §7).
    requests = [e for e in entries if e["message"] == "request"]
    assert {"idp.token", "idp.userinfo", "idp.login_submit", "idp.logout", "idp.revoke"} <= {
        e["endpoint"] for e in requests}
    assert all(e.get("request_id") for e in requests)
    assert any(e.get("login_failure") for e in requests)

    secrets = {
        "password": user.password,
        "wrong password": wrong,
        "code": code,
        "code_verifier": verifier,
        "client secret": oauth_client.secret,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "ID token": tokens["id_token"],
        "refreshed access token": refreshed["access_token"],
        "refreshed refresh token": refreshed["refresh_token"],
        "phone number": "13800138000",
        "name": "张三",
    }
    text = "\n".join(lines)
    for what, value in secrets.items():
        assert value and value not in text, f"{what} in the logs"
    # Token fragments (a signature or a payload) are as bad as whole tokens.
    for token in (tokens["access_token"], tokens["id_token"]):
        for part in token.split(".")[1:]:
            assert part not in text
    # Paths only: no query strings (codes, state, hints) in logged paths.
    assert all("?" not in e.get("path", "") for e in entries)
    assert "st-logout" not in text


def test_log_formatter_drops_unlisted_extras():
    record = logging.LogRecord("yiwang.test", logging.INFO, __file__, 1, "event", None, None)
    record.password = "hunter2-secret"  # type: ignore[attr-defined]
    record.client_id = "portal-1"  # type: ignore[attr-defined]
    data = json.loads(JsonFormatter().format(record))
    assert data["client_id"] == "portal-1"
    assert "password" not in data and "hunter2-secret" not in json.dumps(data)
    # Sanity for the test above: the query helper sees codes in redirect URLs.
    assert query_of("https://x/cb?code=1")["code"] == "1"
