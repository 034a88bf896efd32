"""Errors of the authorization endpoint as typed values (idp.oauth_errors): each code has
one class and one fixed description (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6), and they
travel as redirect parameters."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749 import errors as authlib_errors

from idp import oauth_errors
from idp.oauth_errors import AuthorizationResponseError


def _classes() -> list[type[AuthorizationResponseError]]:
    return list(AuthorizationResponseError.__subclasses__())


def test_one_class_per_code_each_with_its_description():
    codes = [cls.code for cls in _classes()]
    assert len(codes) == len(set(codes))
    for cls in _classes():
        error = cls()
        assert error.params() == [("error", cls.code), ("error_description", cls.public_message)]


def test_the_codes_authlib_raises_at_authorization_map_to_their_class():
    # The errors Authlib's authorization-code grant raises before our rules run.
    for authlib_error in (authlib_errors.InvalidRequestError, authlib_errors.UnauthorizedClientError,
                          authlib_errors.UnsupportedResponseTypeError, authlib_errors.InvalidScopeError,
                          authlib_errors.AccessDeniedError):
        mapped = AuthorizationResponseError.for_code(authlib_error.error)
        assert mapped.code == authlib_error.error
        assert type(mapped) is not oauth_errors.AuthorizationServerError


def test_an_unknown_code_is_a_server_error():
    assert AuthorizationResponseError.for_code("no_such_code").code == "server_error"


def test_an_occurrence_names_its_rule_but_never_unquotable_text():
    error = oauth_errors.InvalidAuthorizationRequestError("nonce is too long.")
    assert error.params() == [("error", "invalid_request"), ("error_description", "nonce is too long.")]
    with pytest.raises(ValueError):
        oauth_errors.InvalidAuthorizationRequestError('bad "quote"')
