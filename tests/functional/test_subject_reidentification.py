"""Audited re-identification of pairwise and public ``sub`` values (issue 5, OIDC Core
§8.1): real logins at portals of different sectors, the service and the operator CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from common.audit import verify_trail
from common.db import db
from common.models import AuditEvent
from idp.errors import ClientNotFoundError
from idp.models import Disclosure
from idp.reidentification import LawfulRequest
from tests.helpers import Browser, RegisteredTestClient, decode_unverified

REASON = "Court order on benefit fraud, file attached to the request"
REQUESTER = "Haidian District Court/(2025)京0108刑初42号"
LAWFUL = LawfulRequest.parse(REASON, REQUESTER)


def _client(services, name: str, host: str, **kw) -> RegisteredTestClient:  # type: ignore[no-untyped-def]
    row, secret = services.clients.create(name=name, redirect_uris=[f"https://{host}/cb"],
                                          scopes=["openid", "profile"], **kw)
    db.session.commit()
    return RegisteredTestClient(row.client_id, secret, f"https://{host}/cb")


@pytest.fixture
def tax(services) -> RegisteredTestClient:  # type: ignore[no-untyped-def]
    return _client(services, "Tax Portal", "tax.example.test")


@pytest.fixture
def health(services) -> RegisteredTestClient:  # type: ignore[no-untyped-def]
    return _client(services, "Health Portal", "health.example.test")


def _sub(http, client, user) -> str:  # type: ignore[no-untyped-def]
    return str(decode_unverified(Browser(http).tokens(client, user)["id_token"])["sub"])


def _events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "subject.reidentify")
                                   .order_by(AuditEvent.id)))


def _resolve(services, client_id: str, sub: str):  # type: ignore[no-untyped-def]
    found = services.reidentification.resolve(client_id, sub, request=LAWFUL, actor="admin:cli")
    db.session.commit()
    return found


def test_pairwise_subs_of_two_sectors_resolve_to_the_same_account(http, services, tax, health, user):
    tax_sub, health_sub = _sub(http, tax, user), _sub(http, health, user)
    assert tax_sub != health_sub  # pairwise per sector
    alice = services.accounts.find_by_identifier("alice")

    at_tax = _resolve(services, tax.client_id, tax_sub)
    at_health = _resolve(services, health.client_id, health_sub)
    assert at_tax is not None and at_health is not None
    assert at_tax.account_id == at_health.account_id == alice.id
    assert (at_tax.kind, at_tax.username, at_tax.status, at_tax.realname_level) == ("person", "alice", "active", "cn-l0")
    assert at_tax.disclosed_to == (tax.client_id,)


def test_public_subject_client(http, services, user):
    portal = _client(services, "Public Sub Portal", "pub.example.test", subject_type="public")
    sub = _sub(http, portal, user)
    found = _resolve(services, portal.client_id, sub)
    assert found is not None and found.username == "alice"


def test_a_sub_of_one_sector_does_not_resolve_at_another(http, services, tax, health, user):
    tax_sub = _sub(http, tax, user)
    _sub(http, health, user)
    assert _resolve(services, health.client_id, tax_sub) is None


def test_a_forged_disclosure_row_is_not_proof(http, services, tax, user, other_user, clock):
    tax_sub = _sub(http, tax, user)
    bob = services.accounts.find_by_identifier("bob")
    # Rows claiming bob received alice's sub, and a sub nobody was ever issued.
    made_up = "A" * 43
    for subject in (tax_sub, made_up):
        db.session.add(Disclosure(account_id=bob.id, client_id=tax.client_id, claim_names=["sub"],
                                  legal_basis="consent", subject=subject, created_at=clock.now()))
    db.session.commit()
    found = _resolve(services, tax.client_id, tax_sub)
    assert found is not None and found.username == "alice"  # never bob
    assert _resolve(services, tax.client_id, made_up) is None


def test_an_organisation_resolves_as_an_organisation(services, tax, clock):
    org = services.accounts.create_organization()
    client = services.client(tax.client_id)
    sub = services.subject(org.subject_seed, client)
    # As the token endpoint records a certificate login (an agent's tokens carry this sub).
    services.disclosures.record(account_id=org.id, client_id=tax.client_id, claim_names={"sub", "uscc"},
                                subject=sub)
    db.session.commit()
    found = _resolve(services, tax.client_id, sub)
    assert found is not None
    assert (found.account_id, found.kind, found.username, found.realname_level) == (org.id, "organization", None, None)


def test_hit_and_miss_are_audited(http, services, tax, health, user):
    tax_sub = _sub(http, tax, user)
    alice = services.accounts.find_by_identifier("alice")
    _resolve(services, tax.client_id, tax_sub)
    _resolve(services, health.client_id, tax_sub)
    hit, miss = _events()
    assert (hit.actor, hit.target, hit.client_id, hit.reason) == ("admin:cli", f"account:{alice.id}", tax.client_id,
                                                                  "lawful_request")
    assert hit.details["matched"] is True and hit.details["sub"] == tax_sub
    assert hit.details["requested_by"] == REQUESTER
    assert hit.details["reason_length"] == len(REASON)
    assert services.p.hasher.verify("audit-reidentify-reason", REASON, hit.details["reason_hash"])
    assert REASON not in str(hit.details)
    assert (miss.target, miss.client_id, miss.details["matched"]) == (None, health.client_id, False)
    assert verify_trail(db.session).ok


def test_unknown_client_is_a_typed_error(services):
    with pytest.raises(ClientNotFoundError):
        services.reidentification.resolve("no-such-client", "A" * 43, request=LAWFUL, actor="admin:cli")


# -- CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli(app):  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(args=["subjects", "resolve", *args])

    return run


def test_cli_prints_the_account_and_never_personal_data(http, services, cli, tax, user):
    tax_sub = _sub(http, tax, user)
    alice = services.accounts.find_by_identifier("alice")
    result = cli("--client-id", tax.client_id, "--sub", tax_sub, "--reason", REASON, "--requested-by", REQUESTER)
    assert result.exit_code == 0, result.output
    assert f"account {alice.id}" in result.stdout and "kind person" in result.stdout
    assert "username alice" in result.stdout and "realname_level cn-l0" in result.stdout
    assert "张三" not in result.output and "13800138000" not in result.output
    assert [e.details["matched"] for e in _events()] == [True]

    as_json = cli("--client-id", tax.client_id, "--sub", tax_sub, "--reason", REASON, "--requested-by", REQUESTER,
                  "--json")
    assert as_json.exit_code == 0
    data = json.loads(as_json.stdout)
    assert (data["account_id"], data["kind"], data["realname_level"]) == (alice.id, "person", "cn-l0")
    assert len(data["reason_hash"]) == 43


def test_cli_miss_exits_1_and_is_audited(http, services, cli, tax, health, user):
    tax_sub = _sub(http, tax, user)
    result = cli("--client-id", health.client_id, "--sub", tax_sub, "--reason", REASON, "--requested-by", REQUESTER)
    assert result.exit_code == 1
    assert "no account has this sub" in result.stderr
    assert [(e.actor, e.details["matched"]) for e in _events()] == [("admin:cli", False)]


@pytest.mark.parametrize(("args", "message"), [
    (["--reason", "too short", "--requested-by", REQUESTER], "reason of 10-500"),
    (["--reason", "x" * 501, "--requested-by", REQUESTER], "reason of 10-500"),
    (["--reason", REASON, "--requested-by", "PSB about 13800138000"], "not a phone or ID number"),
    (["--reason", REASON, "--requested-by", "  "], "requester reference"),
    (["--reason", REASON], "Missing option '--requested-by'"),
    (["--requested-by", REQUESTER], "Missing option '--reason'"),
])
def test_cli_validation_writes_nothing(http, cli, tax, user, args, message):
    tax_sub = _sub(http, tax, user)
    result = cli("--client-id", tax.client_id, "--sub", tax_sub, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert _events() == []


@pytest.mark.parametrize(("client_id", "sub", "message"), [
    ("no-such-client", "A" * 43, "No such client."),
    (None, "not-a-sub", "subject identifier issued by this provider"),
    (None, "110105194912310021" + "a" * 25, "subject identifier issued by this provider"),
])
def test_cli_unknown_client_or_malformed_sub(cli, tax, client_id, sub, message):
    result = cli("--client-id", client_id or tax.client_id, "--sub", sub, "--reason", REASON,
                 "--requested-by", REQUESTER)
    assert result.exit_code == 2
    assert message in result.stderr
    assert _events() == []
