"""No personal data, passwords or tokens in logs, disclosure records or audit events
(issue 5 "Tests"; DESIGN.md §7, SECURITY.md "Credentials", PIPL Art. 51): one full
citizen flow — registration with real-name verification, login, consent, token exchange,
userinfo, refresh, consent withdrawal, history page and export — with every log record
at DEBUG formatted by the app's JSON formatter, then every value searched for (and the
portal's client secret, SECURITY.md "Credentials")."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import select

from common.db import db
from common.models import AuditEvent
from config.logging import JsonFormatter
from idp.models import Disclosure
from realname.importer import ImportReport, RegistryImporter, RegistryRow
from tests.helpers import Browser, RegisteredTestClient, form_field
from tests.helpers import TestUser as Citizen

NAME = "欧阳明华"
NUMBER = "11010519491231002X"  # GB 11643-1999 check character X
NUMBER_15 = "110105491231002"  # the first-generation 15-digit form of the same number
PHONE = "13800138001"
PASSWORD = "privacy scan passphrase 7"


class _Capture(logging.Handler):
    """What the app's stderr handler would write: the same formatter, every level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[_Capture]:
    root = logging.getLogger()
    handler, level = _Capture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _forms(value: str) -> set[str]:
    """The value as it could appear in a log line: raw, JSON-escaped, URL-encoded."""
    return {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}


def _leaks(text: str, secrets: dict[str, str]) -> set[str]:
    return {label for label, value in secrets.items() if any(form in text for form in _forms(value))}


def _rows_text(model: Any) -> str:
    db.session.expire_all()
    rows = db.session.scalars(select(model)).all()
    cols = [c.key for c in model.__mapper__.column_attrs]
    return json.dumps([{c: getattr(r, c) for c in cols} for r in rows], default=str, ensure_ascii=False)


def _register(http: Any, app: Any) -> None:
    page = http.get("/register")
    resp = http.post("/register", data={
        "csrf_token": form_field(page.get_data(as_text=True), "csrf_token"), "interaction": "",
        "name": NAME, "id_number": NUMBER, "phone": PHONE, "username": "", "password": PASSWORD,
    })
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    html = http.get(resp.headers["Location"]).get_data(as_text=True)
    _, text = app.extensions["yiwang.provider"].sms.sent[-1]
    code = re.search(r"(\d{6})", text).group(1)  # type: ignore[union-attr]
    done = http.post("/register/confirm", data={"csrf_token": form_field(html, "csrf_token"),
                                                "pending": form_field(html, "pending"), "code": code})
    assert done.status_code == 303 and done.headers["Location"] == "/account"


def _full_flow(app: Any, portal: RegisteredTestClient) -> dict[str, str]:
    """Runs the citizen's flow; returns the token values it saw, by label."""
    _register(app.test_client(), app)
    http = app.test_client()  # a new browser: log in with the ID number
    browser = Browser(http)
    query, verifier = browser.code_flow(portal, Citizen(NUMBER.lower(), PASSWORD),
                                        scope="openid profile phone realname offline_access")
    resp = http.post("/token", data={"grant_type": "authorization_code", "code": query["code"],
                                     "redirect_uri": portal.redirect_uri, "code_verifier": verifier}, auth=portal.auth)
    assert resp.status_code == 200, resp.get_json()
    first = resp.get_json()
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + first["access_token"]})
    # Released to the portal (that is the point), so the scan below is meaningful.
    assert info.status_code == 200 and info.get_json()["phone_number"] == "+86" + PHONE
    resp = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                     auth=portal.auth)
    assert resp.status_code == 200, resp.get_json()
    second = resp.get_json()
    page = http.get("/account").get_data(as_text=True)
    withdraw = http.post(f"/account/consents/{portal.client_id}/withdraw",
                         data={"csrf_token": form_field(page, "csrf_token")})
    assert withdraw.status_code == 303
    stale = http.post("/token", data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
                      auth=portal.auth)
    assert stale.status_code == 400
    assert http.get("/account/history").status_code == 200
    assert http.get("/account/history.json").get_json()["disclosures"]
    tokens = {"code": query["code"], "code_verifier": verifier}
    for n, body in enumerate((first, second), 1):
        tokens.update({f"{kind}_{n}": body[kind] for kind in ("access_token", "refresh_token", "id_token")})
    return tokens


def test_full_flow_leaves_no_personal_data_or_tokens_behind(app, services, captured, capfd):
    RegistryImporter(db.session, services.p.hasher, services.p.clock.now()).load(
        [RegistryRow(NAME, NUMBER, PHONE)], ImportReport())
    row, secret = services.clients.create(
        name="Privacy Portal", redirect_uris=["https://privacy.example.test/cb"],
        scopes=["openid", "profile", "phone", "realname", "offline_access"])
    db.session.commit()
    portal = RegisteredTestClient(row.client_id, secret, "https://privacy.example.test/cb")

    tokens = _full_flow(app, portal)
    secrets = {"name": NAME, "id_number": NUMBER, "id_number_lower": NUMBER.lower(), "id_number_15": NUMBER_15,
               "phone": PHONE, "phone_e164": "+86" + PHONE, "password": PASSWORD, "client_secret": secret,
               # Its keyed hash too: Authlib logs the client object at DEBUG.
               "client_secret_hash": row.secret_hash, **tokens}
    logs = "\n".join(captured.lines)
    out, err = capfd.readouterr()

    # Positive controls: the capture saw the access log of every step, and the scan finds
    # each value once it is logged or stored.
    paths = {json.loads(line).get("path") for line in captured.lines}
    assert {"/register", "/register/confirm", "/login", "/consent", "/token", "/userinfo", "/account/history",
            "/account/history.json", f"/account/consents/{portal.client_id}/withdraw"} <= paths
    control = _Capture()
    probe = logging.getLogger("yiwang.privacy_probe")
    probe.addHandler(control)
    try:
        for value in secrets.values():
            probe.debug("deliberate leak %s", value)
    finally:
        probe.removeHandler(control)
    assert _leaks("\n".join(control.lines), secrets) == set(secrets)
    print(f"probe {PHONE}", file=sys.stderr)  # noqa: T201 - control of the stderr capture
    assert "phone" in _leaks(capfd.readouterr().err, secrets)

    assert _leaks(logs, secrets) == set(), "personal data or tokens in the JSON logs"
    assert _leaks(out + err, secrets) == set(), "personal data or tokens on stdout/stderr"
    disclosures, events = _rows_text(Disclosure), _rows_text(AuditEvent)
    assert portal.client_id in disclosures and '"action": "token.issue"' in events  # the rows were read
    assert _leaks(disclosures, secrets) == set(), "personal data or tokens in disclosure records"
    assert _leaks(events, secrets) == set(), "personal data or tokens in audit events"


def test_the_scan_recognises_each_encoding() -> None:
    secrets = {"name": NAME, "phone": PHONE}
    assert _leaks(json.dumps({"m": NAME}), secrets) == {"name"}  # \\u escapes
    assert _leaks("/cb?login_hint=" + quote(NAME), secrets) == {"name"}
    assert _leaks("/cb?phone=%2B86" + PHONE, secrets) == {"phone"}
    assert _leaks("masked 138****8001", secrets) == set()
