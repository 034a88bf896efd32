"""Per-client release policy (issue 5): a client receives only the claims its policy
lists, whatever its scopes ask for; requests beyond it are reduced silently; the
disclosure record carries the policy's purpose and legal basis."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from common.db import db
from idp.catalogue import CATALOGUE
from idp.clients import RegisteredClient
from idp.models import Disclosure
from tests.helpers import Browser, RegisteredTestClient, decode_unverified


def test_release_is_reduced_to_the_policy(http, services, user):
    row, secret = services.clients.create(
        name="Tax Portal", redirect_uris=["https://tax.example.test/cb"], scopes=["openid", "profile", "phone"],
        claim_policy={"name": {"purpose": "To address you in letters", "basis": "statutory"}},
    )
    db.session.commit()
    client = RegisteredTestClient(row.client_id, secret, "https://tax.example.test/cb")
    tokens = Browser(http).tokens(client, user, scope="openid profile phone",
                                  claims=json.dumps({"id_token": {"phone_number": None, "name": None}}))
    info = http.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).get_json()
    assert set(info) == {"sub", "name"}  # preferred_username, updated_at, phone_* withheld
    id_claims = decode_unverified(tokens["id_token"])
    assert id_claims["name"] == "张三" and "phone_number" not in id_claims
    record = db.session.query(Disclosure).one()
    assert record.claim_names == ["name", "sub"]
    assert record.purpose == "To address you in letters" and record.legal_basis == "statutory"


def test_invalid_policies_are_refused(app):
    runner = app.test_cli_runner()
    base = ["clients", "create", "--name", "P", "--redirect-uri", "https://p.example.test/cb"]
    for args, message in [
        (["--claim", "shoe_size=fun"], "Unknown claim"),
        (["--claim", "id_number=because"], "sensitive"),
        (["--claim", "phone_number=calls"], "needs one of the scopes"),  # no phone scope
        (["--claim", "name="], "purpose"),
        (["--claim", "name"], "NAME=PURPOSE"),
    ]:
        result = runner.invoke(args=base + args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    ok = runner.invoke(args=base + ["--scope", "openid", "--scope", "profile", "--claim", "name=letters",
                                    "--statutory-claim", "preferred_username=account match", "--json"])
    assert ok.exit_code == 0, ok.output
    shown = json.loads(runner.invoke(args=["clients", "show", json.loads(ok.output)["client_id"], "--json"]).output)
    assert shown["claim_policy"] == {"name": {"purpose": "letters", "basis": "consent"},
                                     "preferred_username": {"purpose": "account match", "basis": "statutory"}}


def test_cli_required_and_sensitive_claims(app):
    runner = app.test_cli_runner()
    base = ["clients", "create", "--name", "P", "--redirect-uri", "https://p.example.test/cb", "--scope", "openid",
            "--scope", "profile", "--scope", "id_number", "--json"]
    refused = runner.invoke(args=base + ["--claim", "id_number=核验身份"])
    assert refused.exit_code == 2 and "sensitive-claims flag" in refused.output
    ok = runner.invoke(args=base + ["--required-claim", "name=办理业务", "--claim", "id_number=核验身份",
                                    "--allow-sensitive-claims"])
    assert ok.exit_code == 0, ok.output
    shown = json.loads(runner.invoke(args=["clients", "show", json.loads(ok.output)["client_id"], "--json"]).output)
    assert shown["claim_policy"] == {"name": {"purpose": "办理业务", "basis": "consent", "required": True},
                                     "id_number": {"purpose": "核验身份", "basis": "consent"}}
    assert shown["sensitive_claims_allowed"] is True
    required_sensitive = runner.invoke(args=base + ["--required-claim", "id_number=x", "--allow-sensitive-claims"])
    assert required_sensitive.exit_code == 2 and "cannot be required" in required_sensitive.output


names = st.sets(st.sampled_from(sorted(CATALOGUE)))


@given(policy=names, requested=names)
@settings(max_examples=200)
def test_released_is_within_policy_and_request(policy, requested):
    # Minimization: released ⊆ (policy ∪ {sub}) ∩ requested, always.
    from common.crypto import KeyedHasher

    client = RegisteredClient(
        client_id="c", name="c", secret_hash=None, redirect_uris=(), post_logout_redirect_uris=(),
        backchannel_logout_uri=None, frontchannel_logout_uri=None, grant_types=(), scopes=(),
        token_endpoint_auth_method="none", subject_type="pairwise", sector_identifier="s", jwks=None,
        id_token_signed_response_alg=None, hasher=KeyedHasher(b"k" * 32),
        claim_policy={n: {"purpose": "p", "basis": "consent"} for n in policy},
    )
    released = client.allowed_claims(requested | {"sub"})
    assert released <= (requested | {"sub"})
    if policy:
        assert released <= policy | {"sub"}


def test_consent_page_lists_each_claim_with_its_purpose(http, services, user):
    row, secret = services.clients.create(
        name="Tax Portal", redirect_uris=["https://tax.example.test/cb"], scopes=["openid", "profile", "phone"],
        claim_policy={"name": {"purpose": "To address you in letters", "basis": "statutory"},
                      "phone_number": {"purpose": "SMS reminders", "basis": "consent"}},
    )
    db.session.commit()
    client = RegisteredTestClient(row.client_id, secret, "https://tax.example.test/cb")
    from tests.helpers import pkce_pair

    browser = Browser(http)
    _, challenge = pkce_pair()
    resp = browser.authorize(client, challenge=challenge, scope="openid profile phone")
    resp = browser.login(browser.follow(resp), user)
    resp = browser.follow(resp)  # resume → consent
    page = browser.follow(resp).get_data(as_text=True)
    assert 'data-claim="name"' in page and 'data-claim="phone_number"' in page
    assert "To address you in letters" in page and "SMS reminders" in page and "依法履职所需" in page
    # Claims outside the policy are not even shown.
    assert 'data-claim="preferred_username"' not in page and 'data-claim="phone_number_verified"' not in page
