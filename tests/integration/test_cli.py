"""Operator CLI (config/cli/) against the test app and real PostgreSQL: each command
is one transaction; bad input exits non-zero with a clear message and writes nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from common.db import db
from idp.models import Account, Client, SigningKey


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(args=list(args))
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return run


def _json(result):
    lines = result.stdout.strip().splitlines()
    # --json prints exactly one JSON document on one line.
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def _count(model) -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(model)))


def _create_client(cli, *extra):
    return _json(cli("clients", "create", "--name", "CLI Portal", "--redirect-uri", "https://cli.example.test/cb",
                     *extra, "--json"))


# -- clients --------------------------------------------------------------------------


def test_clients_create_list_show(cli, services):
    created = _create_client(cli, "--post-logout-redirect-uri", "https://cli.example.test/bye",
                             "--backchannel-logout-uri", "https://cli.example.test/bcl",
                             "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                             "--scope", "openid", "--scope", "phone")
    assert set(created) == {"client_id", "client_secret"}
    client = services.client(created["client_id"])
    assert client is not None and client.check_client_secret(created["client_secret"])

    listed = _json(cli("clients", "list", "--json"))
    assert [c["client_id"] for c in listed] == [created["client_id"]]
    shown = _json(cli("clients", "show", created["client_id"], "--json"))
    assert shown["redirect_uris"] == ["https://cli.example.test/cb"]
    assert shown["post_logout_redirect_uris"] == ["https://cli.example.test/bye"]
    assert shown["backchannel_logout_uri"] == "https://cli.example.test/bcl"
    assert shown["scopes"] == ["openid", "phone"]
    assert shown["subject_type"] == "pairwise"
    # The secret is shown once, at creation, never again (stored as a keyed hash).
    assert created["client_secret"] not in json.dumps(shown) + json.dumps(listed)
    row = db.session.scalars(select(Client)).one()
    assert row.secret_hash != created["client_secret"]


def test_public_client_has_no_secret(cli):
    created = _create_client(cli, "--public")
    assert set(created) == {"client_id"}


def test_text_output_without_json(cli):
    result = cli("clients", "create", "--name", "Text", "--redirect-uri", "https://t.example.test/cb")
    assert result.stdout.startswith("client_id: ")
    assert "shown once" in result.stdout


def test_rotate_secret(cli, services, app):
    created = _create_client(cli)
    rotated = _json(cli("clients", "rotate-secret", created["client_id"], "--json"))
    assert rotated["client_id"] == created["client_id"]
    assert rotated["client_secret"] != created["client_secret"]
    app.extensions["yiwang.provider"].client_cache.invalidate()
    client = services.client(created["client_id"])
    assert client.check_client_secret(rotated["client_secret"])
    assert not client.check_client_secret(created["client_secret"])


def test_rotated_secret_works_at_token_endpoint(cli, http):
    created = _create_client(cli, "--grant-type", "client_credentials")
    # Used once, so this process caches the client (ClientCache).
    assert http.post("/token", data={"grant_type": "client_credentials"},
                     auth=(created["client_id"], created["client_secret"])).status_code == 200
    rotated = _json(cli("clients", "rotate-secret", created["client_id"], "--json"))
    # ClientCache policy: the instance that made the change drops its entry at once.
    old = http.post("/token", data={"grant_type": "client_credentials"},
                    auth=(created["client_id"], created["client_secret"]))
    assert old.status_code == 401
    new = http.post("/token", data={"grant_type": "client_credentials"},
                    auth=(created["client_id"], rotated["client_secret"]))
    assert new.status_code == 200


def test_delete(cli, http):
    created = _create_client(cli, "--grant-type", "client_credentials")
    assert http.post("/token", data={"grant_type": "client_credentials"},
                     auth=(created["client_id"], created["client_secret"])).status_code == 200
    assert _json(cli("clients", "delete", created["client_id"], "--json")) == {"deleted": created["client_id"]}
    assert _count(Client) == 0
    resp = http.post("/token", data={"grant_type": "client_credentials"},
                     auth=(created["client_id"], created["client_secret"]))
    assert resp.status_code == 401


def test_client_commands_are_audited_as_the_cli(cli):
    """Issue 17 (and issue 11 item 2): operator commands that change clients go through the
    audited operations, with the actor admin:cli; the console's own client is refused."""
    from common.models import AuditEvent

    created = _create_client(cli, "--first-party", "--scope", "openid", "--scope", "admin")
    cli("clients", "rotate-secret", created["client_id"], "--json")
    cli("clients", "delete", created["client_id"], "--json")
    db.session.expire_all()
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("admin.clients.%"))
                                .order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor, e.target) for e in events] == [
        (f"admin.clients.{verb}", "admin:cli", f"client:{created['client_id']}")
        for verb in ("create", "rotate_secret", "delete")]


def test_unknown_client(cli):
    for command in (("clients", "show", "nope"), ("clients", "delete", "nope"), ("clients", "rotate-secret", "nope")):
        result = cli(*command, ok=False)
        assert result.exit_code != 0
        assert "No such client." in result.stderr


@pytest.mark.parametrize("args,message", [
    (("--redirect-uri", "not-a-uri"), "redirect URI"),
    (("--redirect-uri", "https://cli.example.test/cb#frag"), "redirect URI"),
    (("--redirect-uri", "https://cli.example.test/cb", "--scope", "email"), "Unsupported scope: email."),
    (("--redirect-uri", "https://cli.example.test/cb", "--public", "--grant-type", "client_credentials"),
     "client_credentials"),
    (("--redirect-uri", "https://a.example.test/cb", "--redirect-uri", "https://b.example.test/cb"),
     "sector identifier"),
    ((), "At least one redirect URI is required."),
    # Issue 17: the admin scope only for a first-party administration client.
    (("--redirect-uri", "https://cli.example.test/cb", "--scope", "openid", "--scope", "admin"), "first-party"),
])
def test_clients_create_bad_input_writes_nothing(cli, args, message):
    result = cli("clients", "create", "--name", "Bad", *args, "--json", ok=False)
    assert result.exit_code != 0
    assert message in result.stderr, result.stderr
    assert result.stdout == ""
    assert _count(Client) == 0


def test_unknown_grant_type_is_refused(cli):
    result = cli("clients", "create", "--name", "Bad", "--redirect-uri", "https://cli.example.test/cb",
                 "--grant-type", "password", "--json", ok=False)
    # RFC 9700 §2.4: the password grant does not exist here.
    assert result.exit_code != 0
    assert "--grant-type" in result.stderr and "password" in result.stderr
    assert _count(Client) == 0
    result = cli("clients", "create", "--name", "Bad", "--redirect-uri", "https://cli.example.test/cb",
                 "--grant-type", "implicit", ok=False)
    assert result.exit_code != 0
    assert _count(Client) == 0


# -- users ----------------------------------------------------------------------------


def test_users_create_list_lock_unlock(cli, services):
    created = _json(cli("users", "create", "--username", "carol", "--password", "a long enough secret",
                        "--name", "李四", "--phone", "13912345678", "--json"))
    assert created["username"] == "carol"
    listed = _json(cli("users", "list", "--json"))
    assert [(u["username"], u["status"], u["has_phone"]) for u in listed] == [("carol", "active", True)]
    # Personal data is not printed by listings.
    assert "李四" not in json.dumps(listed) and "13912345678" not in json.dumps(listed)

    locked = _json(cli("users", "lock", "carol", "--json"))
    assert locked["status"] == "locked"
    assert services.accounts.get_by_username("carol").status == "locked"
    # Lock by phone number works too, and unlock restores.
    unlocked = _json(cli("users", "unlock", "13912345678", "--json"))
    assert unlocked["status"] == "active"
    db.session.expire_all()
    assert services.accounts.get_by_username("carol").status == "active"


def test_locked_user_cannot_log_in(cli, http):
    cli("users", "create", "--username", "carol", "--password", "a long enough secret")
    cli("users", "lock", "carol")
    page = http.get("/login")
    from tests.helpers import form_field

    resp = http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                                     "interaction": "", "identifier": "carol", "password": "a long enough secret"})
    assert resp.status_code == 401


@pytest.mark.parametrize("args,message", [
    (("--username", "dave", "--password", "short"), "at least 8 characters"),
    (("--username", "dave", "--password", "password123"), "too common"),
    (("--username", "dave", "--password", "dave"), "at least 8 characters"),
    (("--username", "dave1234", "--password", "DAVE1234"), "too common"),
    (("--username", "1dave", "--password", "a long enough secret"), "A username has"),
    (("--username", "dave", "--password", "a long enough secret", "--phone", "12345"), "not a valid mobile"),
    (("--password", "a long enough secret"), "username or a phone number is required"),
])
def test_users_create_bad_input_writes_nothing(cli, args, message):
    result = cli("users", "create", *args, "--json", ok=False)
    assert result.exit_code != 0
    assert message in result.stderr, result.stderr
    assert result.stdout == ""
    assert _count(Account) == 0


def test_duplicate_username_and_phone(cli):
    cli("users", "create", "--username", "carol", "--password", "a long enough secret", "--phone", "13912345678")
    for args in (("--username", "Carol", "--password", "another long secret"),
                 ("--username", "erin", "--password", "another long secret", "--phone", "+86 139-1234-5678")):
        result = cli("users", "create", *args, ok=False)
        assert result.exit_code != 0
        assert "already exists" in result.stderr
    assert _count(Account) == 1


def test_lock_ends_the_sessions_of_the_account(cli, http, services):
    from tests.helpers import form_field

    cli("users", "create", "--username", "carol", "--password", "a long enough secret")
    page = http.get("/login")
    resp = http.post("/login", data={"csrf_token": form_field(page.get_data(as_text=True), "csrf_token"),
                                     "interaction": "", "identifier": "carol", "password": "a long enough secret"})
    assert resp.status_code == 303 and http.get("/account").status_code == 200
    locked = _json(cli("users", "lock", "carol", "--json"))
    assert locked["status"] == "locked" and locked["sessions_ended"] == 1
    assert http.get("/account").status_code == 303  # the SSO session is gone
    assert services.sessions.of_account(services.accounts.get_by_username("carol").id) == []


def test_unknown_user_lock(cli):
    result = cli("users", "lock", "nobody", ok=False)
    assert result.exit_code != 0 and "No such account." in result.stderr


# -- keys and logout ------------------------------------------------------------------


def test_keys_list_and_rotate(cli, http):
    keys = _json(cli("keys", "list", "--json"))
    assert sorted((k["alg"], k["state"]) for k in keys) == [
        ("ES256", "active"), ("ES256", "next"), ("RS256", "active"), ("RS256", "next")]
    nxt = {k["alg"]: k["kid"] for k in keys if k["state"] == "next"}
    rotated = _json(cli("keys", "rotate", "--alg", "ES256", "--json"))
    assert [(k["alg"], k["kid"], k["state"]) for k in rotated] == [("ES256", nxt["ES256"], "active")]
    after = _json(cli("keys", "list", "--json"))
    assert len(after) == 5
    assert {k["state"] for k in after if k["alg"] == "ES256"} == {"active", "next", "retired"}
    # The CLI invalidates this process's key cache: the JWKS shows the new next key now.
    published = {k["kid"] for k in http.get("/jwks.json").get_json()["keys"]}
    assert {k["kid"] for k in after} <= published


def test_keys_rotate_if_due_does_nothing_when_fresh(cli):
    assert _json(cli("keys", "rotate", "--if-due", "--json")) == []
    assert _count(SigningKey) == 4


def test_keys_ensure_is_idempotent(cli):
    assert _json(cli("keys", "ensure", "--json")) == {"created": False}


def test_keys_rotate_bad_alg(cli):
    result = cli("keys", "rotate", "--alg", "HS256", ok=False)
    assert result.exit_code != 0
    assert _count(SigningKey) == 4


def test_logout_deliver_with_nothing_due(cli):
    assert _json(cli("logout", "deliver", "--json")) == {"delivered": 0, "attempted": 0}
