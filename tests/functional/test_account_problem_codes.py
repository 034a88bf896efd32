"""The account page's ``problem`` alert (issue 17): only the message codes our own
redirects use are shown, so a link cannot put attacker-chosen text (a fake support phone
number, "your account is locked, call …") in an alert on the genuine page."""

from __future__ import annotations

import re

import pytest

from tests.helpers import form_field

from ._support import isolate_requests


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


@pytest.fixture
def signed_in(http, user):
    page = http.get("/login")
    resp = http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                                     "identifier": user.username, "password": user.password})
    assert resp.status_code == 303


def _alert(resp) -> str | None:
    match = re.search(r'<p class="error" role="alert" id="form-error">([^<]*)</p>', resp.get_data(as_text=True))
    return match.group(1) if match else None


@pytest.mark.parametrize("text", ["Your_account_is_locked_call_4008_123_456", "账户已冻结请致电客服"])
def test_attacker_text_is_not_shown(http, signed_in, text):
    resp = http.get("/account", query_string={"problem": text})
    assert resp.status_code == 200
    assert _alert(resp) is None
    # Nowhere on the page either (the language links repeat the query in their href only).
    assert text not in re.sub(r'href="[^"]*"', "", resp.get_data(as_text=True))


@pytest.mark.parametrize("code", ["invalid_credentials", "duplicate_identity", "csrf", "saved"])
def test_other_known_codes_are_not_shown(http, signed_in, code):
    # These have texts, but no redirect of ours sends them to /account as a problem.
    resp = http.get("/account", query_string={"problem": code})
    assert resp.status_code == 200
    assert _alert(resp) is None


@pytest.mark.parametrize("code", ["verification_failed", "registry_unavailable", "verification_throttled"])
def test_our_problem_codes_are_shown(http, signed_in, code):
    # Positive control: the codes verify_submit's re-check redirects with.
    resp = http.get("/account", query_string={"problem": code})
    alert = _alert(resp)
    assert alert and code not in alert
