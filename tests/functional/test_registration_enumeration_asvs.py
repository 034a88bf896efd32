"""Registration does not enumerate accounts (issue 17, Medium item 5; OWASP ASVS 5 §6.3.8
no account enumeration, §2.4 anti-automation): attempts are throttled per client IP before
anything else is looked at, then input, registry check and phone proof; an existing phone,
username or ID number is told only after the SMS code was right, with one message for all
three, and nothing is created."""

from __future__ import annotations

import re

import pytest

from common.db import db
from realname.idnumbers import check_character
from realname.importer import ImportReport, RegistryImporter, RegistryRow
from tests.conftest import make_settings
from tests.helpers import assert_security_headers, form_field

from ._support import isolate_requests

PASSWORD = "a long enough secret"
REGISTER_MAX_PER_IP = 4


def _number(first17: str) -> str:
    return first17 + check_character(first17)


ZHANG = ("张三", _number("11010519491231002"), "13800138001")
LI = ("李四", _number("44052418800101001"), "13700000000")
WANG = ("王五", _number("11010519800101003"), "13600000000")


@pytest.fixture
def settings(tmp_path, pg_template):
    return make_settings(tmp_path, pg_template, register_max_per_ip_hour=REGISTER_MAX_PER_IP)


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


@pytest.fixture
def registry(services):
    RegistryImporter(db.session, services.p.hasher, services.p.clock.now()).load(
        [RegistryRow(*ZHANG), RegistryRow(LI[0], LI[1]), RegistryRow(WANG[0], WANG[1])], ImportReport()
    )
    db.session.commit()


def _sent(app) -> list[tuple[str, str]]:
    return app.extensions["yiwang.provider"].sms.sent


def _submit(http, *, name, number, phone, username="", ip="127.0.0.1", password=PASSWORD):
    env = {"REMOTE_ADDR": ip}
    page = http.get("/register", environ_base=env)
    return http.post("/register", environ_base=env, data={
        "csrf_token": form_field(page.get_data(as_text=True), "csrf_token"), "interaction": "",
        "name": name, "id_number": number, "phone": phone, "username": username, "password": password,
    })


def _confirm(http, app, started, ip="127.0.0.1"):
    assert started.status_code == 303, started.get_data(as_text=True)[:400]
    env = {"REMOTE_ADDR": ip}
    html = http.get(started.headers["Location"], environ_base=env).get_data(as_text=True)
    code = re.search(r"(\d{6})", _sent(app)[-1][1]).group(1)  # type: ignore[union-attr]
    return http.post("/register/confirm", environ_base=env, data={
        "csrf_token": form_field(html, "csrf_token"), "pending": form_field(html, "pending"), "code": code,
    })


def _accounts() -> int:
    db.session.expire_all()
    return int(db.session.execute(db.text("SELECT count(*) FROM idp_accounts")).scalar())


def _verifications() -> int:
    return int(db.session.execute(db.text("SELECT count(*) FROM audit_events WHERE action = 'realname.verify'"))
               .scalar())


def _form_error(resp) -> str:
    html = resp.get_data(as_text=True)
    match = re.search(r'id="form-error">([^<]*)<', html)
    assert match, html[:600]
    return match.group(1)


def _existing(app, clock):
    """One registered citizen: 张三, phone 13800138001, username zhangsan."""
    name, number, phone = ZHANG
    http = app.test_client()
    done = _confirm(http, app, _submit(http, name=name, number=number, phone=phone, username="zhangsan",
                                       ip="10.0.0.1"), ip="10.0.0.1")
    assert done.status_code == 303 and done.headers["Location"] == "/account"
    clock.advance(61)  # past the resend interval of that phone


def _probes():
    """A registration reusing one detail of the existing account each, all else new."""
    return {
        "id_number": {"name": ZHANG[0], "number": ZHANG[1], "phone": "13900000001", "username": ""},
        "phone": {"name": LI[0], "number": LI[1], "phone": ZHANG[2], "username": ""},
        "username": {"name": WANG[0], "number": WANG[1], "phone": "13600000000", "username": "ZhangSan"},
    }


def test_existing_details_are_not_revealed_before_the_phone_proof(app, registry, clock):
    _existing(app, clock)
    for kind, probe in _probes().items():
        resp = _submit(app.test_client(), ip="10.0.0.2", **probe)
        # Before issue 17 this answered 409 at once, before the registry check and any
        # rate limit: a free oracle for "is this phone / username / ID number registered".
        assert resp.status_code == 303, (kind, resp.status_code)
        assert resp.headers["Location"].startswith("/register/confirm?pending=")
    assert _accounts() == 1


def test_duplicates_after_the_code_get_one_generic_answer_and_create_nothing(app, registry, clock):
    _existing(app, clock)
    answers = {}
    for kind, probe in _probes().items():
        http = app.test_client()
        resp = _confirm(http, app, _submit(http, ip="10.0.0.3", **probe), ip="10.0.0.3")
        assert resp.status_code == 409, (kind, resp.get_data(as_text=True)[:400])
        assert_security_headers(resp)
        html = resp.get_data(as_text=True)
        # The citizen loses nothing but the password: the form comes back filled in, with
        # a way to log in instead.
        assert f'value="{probe["number"]}"' in html and f'value="{probe["phone"]}"' in html
        assert f'value="{probe["name"]}"' in html
        assert 'name="password" type="password" value=""' in html
        assert 'id="duplicate-login"' in html and 'href="/login"' in html
        answers[kind] = _form_error(resp)
        assert _accounts() == 1
    # One message for every kind of duplicate: nothing says which detail is taken.
    assert len(set(answers.values())) == 1, answers
    text = next(iter(answers.values()))
    for hint in ("ID number", "身份证", "phone", "手机", "username", "用户名"):
        assert hint not in text


def test_registration_is_throttled_per_ip_before_anything_is_looked_at(app, registry, clock):
    _existing(app, clock)
    probe = _probes()["phone"]
    for _ in range(REGISTER_MAX_PER_IP):
        # Bad input still counts: every attempt from the IP does.
        assert _submit(app.test_client(), ip="10.0.0.4", name=LI[0], number="1", phone="1").status_code == 400
    sent_before, verified_before = len(_sent(app)), _verifications()
    resp = _submit(app.test_client(), ip="10.0.0.4", **probe)
    assert resp.status_code == 429
    assert "Too many registration attempts" in _form_error(resp) or "注册尝试过多" in _form_error(resp)
    # Refused before the registry check and the SMS.
    assert len(_sent(app)) == sent_before and _verifications() == verified_before
    # Another IP is not affected; after the hour this one may try again.
    assert _submit(app.test_client(), ip="10.0.0.5", **probe).status_code == 303
    clock.advance(3600)
    other = _probes()["username"]
    assert _submit(app.test_client(), ip="10.0.0.4", **other).status_code == 303


def test_bad_username_is_a_form_error_before_the_registry(app, registry):
    resp = _submit(app.test_client(), name=LI[0], number=LI[1], phone=LI[2], username="x!")
    assert resp.status_code == 400
    assert 'id="username-error"' in resp.get_data(as_text=True)
    assert _sent(app) == []
