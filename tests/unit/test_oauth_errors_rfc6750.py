"""Typed OAuth errors (idp/oauth_errors.py): each class's status, JSON body and headers,
the RFC 6750 §3 challenge for bearer-token errors and Retry-After for server faults."""

from __future__ import annotations

import pytest
from flask import Flask

from idp.errors import SigningKeyUnavailableError
from idp.oauth_errors import (
    BearerTokenError,
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    InvalidRequestError,
    InvalidTokenError,
    OAuthError,
    TemporarilyUnavailableError,
    TokenRequiredError,
)


@pytest.mark.parametrize(("error", "status", "code"), [
    # RFC 6750 §3.1: the status each bearer error code goes with.
    (InvalidRequestError(), 400, "invalid_request"),
    (InvalidTokenError(), 401, "invalid_token"),
    (InsufficientScopeError(), 403, "insufficient_scope"),
    # RFC 9470 §3.
    (InsufficientUserAuthenticationError(), 401, "insufficient_user_authentication"),
])
def test_bearer_errors_name_their_code_in_body_and_challenge(error: BearerTokenError, status: int, code: str):
    body, got_status, headers = error.render()
    assert got_status == status == error.status
    # RFC 6749 §5.2: error and error_description.
    assert body == {"error": code, "error_description": error.description}
    # RFC 6750 §3: the challenge names the same error, with the same description.
    assert headers["WWW-Authenticate"] == (
        f'Bearer realm="yiwang", error="{code}", error_description="{error.description}"')
    assert headers["Cache-Control"] == "no-store"
    assert "Retry-After" not in headers


def test_no_credentials_get_a_bare_challenge_and_no_error_code():
    # RFC 6750 §3.1: a request without authentication information gets no error code.
    body, status, headers = TokenRequiredError().render()
    assert (body, status) == ({}, 401)
    assert headers["WWW-Authenticate"] == 'Bearer realm="yiwang"'
    assert TokenRequiredError().error is None


def test_insufficient_scope_names_the_scope_needed_when_known():
    with_scope = InsufficientScopeError(scope="openid").headers()["WWW-Authenticate"]
    assert with_scope.endswith(', scope="openid"') and with_scope.count("scope=") == 1
    assert "scope=" not in InsufficientScopeError().headers()["WWW-Authenticate"]


def test_insufficient_user_authentication_names_the_max_age():
    # RFC 9470 §3: max_age, the authentication age the resource accepts.
    challenge = InsufficientUserAuthenticationError(max_age=600).challenge()
    assert challenge.endswith(', max_age="600"')
    assert "max_age" not in InsufficientUserAuthenticationError().challenge()


def test_the_realm_is_the_renderers_protection_space():
    error = InvalidTokenError()
    assert error.challenge("yiwang-admin").startswith('Bearer realm="yiwang-admin", error="invalid_token"')
    assert TokenRequiredError().render("metrics").headers["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_temporarily_unavailable_is_503_with_retry_after_and_no_challenge():
    for error in (TemporarilyUnavailableError(), SigningKeyUnavailableError("no active ES256 signing key")):
        body, status, headers = error.render()
        assert status == 503 and body["error"] == "temporarily_unavailable"
        # RFC 9110 §10.2.3: delay-seconds.
        assert headers["Retry-After"].isdigit() and int(headers["Retry-After"]) > 0
        assert "WWW-Authenticate" not in headers
    assert SigningKeyUnavailableError().description == "The service cannot sign tokens at the moment. Try again later."


def test_detail_is_for_the_log_and_never_rendered():
    error = InvalidTokenError("revoked jti abc123")
    body, _, headers = error.render()
    assert "abc123" not in str(body) and "abc123" not in str(headers)
    assert error.detail == "revoked jti abc123"


def test_a_description_can_be_replaced_by_another_fixed_text():
    error = InvalidRequestError(public_message="Use one method to send the token.")
    assert error.body()["error_description"] == "Use one method to send the token."
    assert 'error_description="Use one method to send the token."' in error.challenge()


@pytest.mark.parametrize("text", ['say "no"', "back\\slash", "非 ASCII", "line\nbreak"])
def test_descriptions_that_cannot_be_quoted_are_refused(text: str):
    # RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E inside a quoted-string.
    with pytest.raises(ValueError, match="description"):
        InvalidTokenError(public_message=text)
    with pytest.raises(ValueError, match="description"):
        type("Bad", (OAuthError,), {"public_message": text})


def test_flask_turns_a_rendered_error_into_a_json_response():
    app = Flask(__name__)

    @app.get("/r")
    def resource():
        return InsufficientScopeError(scope="openid").render()

    resp = app.test_client().get("/r")
    assert resp.status_code == 403 and resp.mimetype == "application/json"
    assert resp.get_json() == {"error": "insufficient_scope",
                               "error_description": InsufficientScopeError.public_message}
    assert resp.headers["Cache-Control"] == "no-store"
    assert 'scope="openid"' in resp.headers["WWW-Authenticate"]
