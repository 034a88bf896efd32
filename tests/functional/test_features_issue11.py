"""Feature switches (issue 11): introspection, revocation, client_credentials and the two
logout channels each switch their endpoint, their discovery metadata and their server
registration together, in the way node-oidc-provider's ``features`` do."""

from __future__ import annotations

import pytest

from common.db import db
from config.app import create_app
from idp.discovery import provider_metadata
from idp.errors import InvalidClientMetadataError
from idp.protocol import Features
from tests.conftest import make_settings

OFF = {"feature_introspection": False, "feature_revocation": False, "feature_client_credentials": False,
       "feature_frontchannel_logout": False, "feature_backchannel_logout": False}


def test_discovery_names_only_the_features_that_are_on():
    on = provider_metadata("https://idp.example.test", ("cn-l1",))
    off = provider_metadata("https://idp.example.test", ("cn-l1",), Features(
        introspection=False, revocation=False, client_credentials=False, frontchannel_logout=False,
        backchannel_logout=False))
    for key in ("introspection_endpoint", "revocation_endpoint", "backchannel_logout_supported",
                "frontchannel_logout_supported", "introspection_endpoint_auth_methods_supported"):
        assert key in on and key not in off
    assert "client_credentials" in on["grant_types_supported"]
    assert off["grant_types_supported"] == ["authorization_code", "refresh_token"]


@pytest.fixture
def switched_off(tmp_path, fresh_database, store, clock, password_hasher):
    app = create_app(make_settings(tmp_path, fresh_database, create_keys_on_start=True, **OFF),
                     store=store, clock=clock, passwords=password_hasher)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_switched_off_features_are_gone_from_routes_server_and_registration(switched_off):
    http = switched_off.test_client()
    services = switched_off.extensions["yiwang.provider"].services(db.session())
    row, secret = services.clients.create(name="M2M", redirect_uris=["https://m2m.example.test/cb"])
    db.session.commit()
    with pytest.raises(InvalidClientMetadataError):
        services.clients.create(name="M2M 2", redirect_uris=["https://m2m.example.test/cb"],
                                grant_types=["client_credentials"])
    db.session.rollback()
    metadata = http.get("/.well-known/openid-configuration").get_json()
    assert "introspection_endpoint" not in metadata and "revocation_endpoint" not in metadata
    assert http.post("/introspect", data={"token": "x"}, auth=(row.client_id, secret)).status_code == 404
    assert http.post("/revoke", data={"token": "x"}, auth=(row.client_id, secret)).status_code == 404
    # RFC 6749 §5.2: a grant type the server does not support.
    token = http.post("/token", data={"grant_type": "client_credentials"}, auth=(row.client_id, secret))
    assert token.status_code == 400 and token.get_json()["error"] == "unsupported_grant_type"


def test_features_are_on_by_default(http, oauth_client):
    assert http.post("/introspect", data={"token": "x"}, auth=oauth_client.auth).status_code == 200
    assert http.post("/revoke", data={"token": "x"}, auth=oauth_client.auth).status_code == 200


def test_switched_off_logout_channels_send_nothing(switched_off):
    services = switched_off.extensions["yiwang.provider"].services(db.session())
    row, _ = services.clients.create(name="Portal", redirect_uris=["https://p.example.test/cb"],
                                     backchannel_logout_uri="https://p.example.test/bcl",
                                     frontchannel_logout_uri="https://p.example.test/fcl")
    account = services.accounts.create(username="carol", password="a long enough secret")
    db.session.commit()
    _, sso = services.sessions.create(account_id=account.id, subject_seed=account.subject_seed, amr=["pwd"],
                                      acr="cn-l1")
    services.sessions.add_client(sso.sid, row.client_id)
    sso = services.sessions.end_by_sid(sso.sid)
    assert sso is not None and sso.clients == [row.client_id]
    assert services.logout.frontchannel_urls(sso) == []
    assert services.logout.ended([sso]) == []
