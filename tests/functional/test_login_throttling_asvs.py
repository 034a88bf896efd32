"""Password login throttling through HTTP (OWASP ASVS 5 §6.3.1, SECURITY.md
"Credentials"): one message for unknown accounts and wrong passwords, a temporary lockout
per identifier, a per-IP limit, and 303 after a credential POST.

The failure counters live in the shared store (Redis here) with real TTLs; the window
start is kept next to each counter and checked against the injected clock, which is what
lets these tests move time instead of sleeping."""

from __future__ import annotations

import pytest

from tests.helpers import assert_security_headers

from ._support import csrf_of, isolate_requests

PASSWORD = "correct horse battery"
MAX_FAILURES = 5
LOCKOUT = 900
IP_MAX = 50


@pytest.fixture(autouse=True)
def _request_contexts(app):
    isolate_requests(app)


def _post_login(http, identifier, password, ip="127.0.0.1"):
    env = {"REMOTE_ADDR": ip}
    page = http.get("/login", environ_base=env)
    return http.post("/login", data={"csrf_token": csrf_of(page), "interaction": "", "identifier": identifier,
                                     "password": password}, environ_base=env)


def _error_text(resp) -> str:
    html = resp.get_data(as_text=True)
    start = html.index('id="login-error">') + len('id="login-error">')
    return html[start:html.index("<", start)]


def _refused(resp) -> bool:
    return resp.status_code == 401 and "Location" not in resp.headers


def test_success_is_303_not_307(http, user):
    resp = _post_login(http, "alice", PASSWORD)
    # SECURITY.md / RFC 9110 §15.4.4: 303 makes the browser GET the next page; a 307
    # would re-POST the password to the redirect target.
    assert resp.status_code == 303
    assert resp.headers["Location"]


def test_same_answer_for_unknown_user_and_wrong_password(http, user):
    unknown = _post_login(http, "nobody-here", PASSWORD)
    wrong = _post_login(http, "alice", "wrong password!")
    # ASVS 5 §6.3.8 (no account enumeration): same status, same message.
    assert unknown.status_code == wrong.status_code == 401
    assert _error_text(unknown) == _error_text(wrong)
    assert "nobody-here" not in _error_text(unknown)
    assert_security_headers(wrong)


def test_lockout_after_max_failures_then_released(http, user, clock):
    for _ in range(MAX_FAILURES):
        assert _refused(_post_login(http, "alice", "wrong password!"))
    wrong_message = _error_text(_post_login(http, "nobody-else", "x" * 12))
    # ASVS 5 §6.3.1: the correct password is refused during the lockout window, with the
    # same message as a wrong password (the lockout reveals nothing either).
    locked = _post_login(http, "alice", PASSWORD)
    assert _refused(locked)
    assert _error_text(locked) == wrong_message
    clock.advance(LOCKOUT - 60)
    assert _refused(_post_login(http, "alice", PASSWORD))
    # After the window the account works again.
    clock.advance(61)
    assert _post_login(http, "alice", PASSWORD).status_code == 303


def test_success_resets_the_counter(http, user, clock):
    for _ in range(MAX_FAILURES - 1):
        assert _refused(_post_login(http, "alice", "wrong password!"))
    assert _post_login(http, "alice", PASSWORD).status_code == 303
    for _ in range(MAX_FAILURES - 1):
        assert _refused(_post_login(http, "alice", "wrong password!"))
    assert _post_login(http, "alice", PASSWORD).status_code == 303


def test_unknown_identifiers_lock_out_too(http, user):
    # Unknown identifiers are counted like known ones, so a lockout does not reveal that
    # an account exists (ASVS 5 §6.3.8).
    for _ in range(MAX_FAILURES):
        _post_login(http, "ghost", "wrong password!")
    assert _refused(_post_login(http, "ghost", "wrong password!"))


def test_lockout_counts_every_spelling_of_one_identifier(http, user):
    # The phone number can be typed in many ways; all of them are one identifier, or the
    # per-account limit could be bypassed by cycling spellings.
    spellings = ["13800138000", "+8613800138000", "008613800138000", "138 0013 8000", "138-0013-8000"]
    for spelling in spellings[:MAX_FAILURES]:
        assert _refused(_post_login(http, spelling, "wrong password!"))
    assert _refused(_post_login(http, "13800138000", PASSWORD))
    assert _refused(_post_login(http, "ALICE ", "wrong password!"))
    # Case and surrounding spaces of a username are the same identifier too.
    for _ in range(MAX_FAILURES):
        _post_login(http, " Alice", "wrong password!")
    assert _refused(_post_login(http, "alice", PASSWORD))


def test_other_identifiers_are_not_locked(http, user, other_user):
    for _ in range(MAX_FAILURES):
        _post_login(http, "alice", "wrong password!")
    assert _post_login(http, "bob", "another fine passphrase").status_code == 303


def test_per_ip_limit_across_identifiers(http, user, clock):
    # ASVS 5 §6.3.1: also per source — spreading guesses over many identifiers from one
    # IP is throttled after ip_max_failures_per_hour failures.
    for i in range(IP_MAX):
        assert _refused(_post_login(http, f"guess{i:03d}", "wrong password!", ip="203.0.113.7"))
    assert _refused(_post_login(http, "alice", PASSWORD, ip="203.0.113.7"))
    # Other sources are unaffected.
    assert _post_login(http, "alice", PASSWORD, ip="198.51.100.20").status_code == 303
    clock.advance(3600 + 1)
    assert _post_login(http, "alice", PASSWORD, ip="203.0.113.7").status_code == 303


def test_locked_account_gets_the_generic_message(http, user, services):
    from common.db import db

    wrong_message = _error_text(_post_login(http, "alice", "wrong password!"))
    services.accounts.set_status(services.accounts.get_by_username("alice"), "locked")
    db.session.commit()
    resp = _post_login(http, "alice", PASSWORD)
    assert _refused(resp)
    assert _error_text(resp) == wrong_message
