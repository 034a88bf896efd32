"""SMS bombing through the pages (issue 17, Medium item 6; OWASP ASVS 5 §2.4): registration
codes were keyed to a per-attempt id, so "one a minute, ten a day" never applied to the
phone. Every send is now throttled on the destination phone, across attempts and purposes."""

from __future__ import annotations

import re

import pytest

from common.db import db
from realname.importer import ImportReport, RegistryImporter, RegistryRow
from realname.otp import RESEND_INTERVAL
from tests.conftest import make_settings
from tests.helpers import form_field

from ._support import isolate_requests

NUMBER = "11010519491231002X"
PHONE = "13800138001"
PASSWORD = "a long enough secret"
PER_PHONE_DAY = 10


@pytest.fixture
def settings(tmp_path, pg_template):
    # The registry checks are limited per ID number too; lift that here so the SMS limit
    # is the one under test.
    return make_settings(tmp_path, pg_template, verify_max_per_account_hour=100, verify_max_per_ip_hour=100)


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


@pytest.fixture
def registry(services):
    RegistryImporter(db.session, services.p.hasher, services.p.clock.now()).load(
        [RegistryRow("张三", NUMBER, PHONE)], ImportReport()
    )
    db.session.commit()


def _sent_to(app, phone) -> int:
    return sum(1 for to, _ in app.extensions["yiwang.provider"].sms.sent if to == phone)


def _start(http):
    page = http.get("/register")
    return http.post("/register", data={
        "csrf_token": form_field(page.get_data(as_text=True), "csrf_token"), "interaction": "",
        "name": "张三", "id_number": NUMBER, "phone": PHONE, "username": "", "password": PASSWORD,
    })


def _throttled(resp) -> bool:
    html = resp.get_data(as_text=True)
    return resp.status_code == 429 and ("验证码请求过于频繁" in html or "Too many codes" in html)


def test_new_registration_attempts_do_not_bypass_the_per_phone_limits(app, registry, clock):
    assert _start(app.test_client()).status_code == 303
    # Before issue 17: every new attempt (a new pending id) sent another SMS at once.
    assert _throttled(_start(app.test_client()))
    assert _sent_to(app, PHONE) == 1
    for _ in range(PER_PHONE_DAY - 1):
        clock.advance(RESEND_INTERVAL)
        assert _start(app.test_client()).status_code == 303
    clock.advance(RESEND_INTERVAL)
    assert _throttled(_start(app.test_client()))
    assert _sent_to(app, PHONE) == PER_PHONE_DAY


def test_registration_and_phone_verification_share_the_phone_interval(app, registry, clock):
    http = app.test_client()
    started = _start(http)
    html = http.get(started.headers["Location"]).get_data(as_text=True)
    code = re.search(r"(\d{6})", app.extensions["yiwang.provider"].sms.sent[-1][1]).group(1)  # type: ignore[union-attr]
    done = http.post("/register/confirm", data={"csrf_token": form_field(html, "csrf_token"),
                                                "pending": form_field(html, "pending"), "code": code})
    assert done.status_code == 303
    page = http.get("/account/phone").get_data(as_text=True)
    # Another purpose and target (the account), the same phone, seconds later.
    again = http.post("/account/phone", data={"csrf_token": form_field(page, "csrf_token"), "action": "send"})
    assert _throttled(again)
    assert _sent_to(app, PHONE) == 1
    clock.advance(RESEND_INTERVAL)
    assert http.post("/account/phone", data={"csrf_token": form_field(page, "csrf_token"),
                                             "action": "send"}).status_code == 200
    assert _sent_to(app, PHONE) == 2
