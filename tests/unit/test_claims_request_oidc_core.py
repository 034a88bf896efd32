"""The ``claims`` request parameter's shape (OIDC Core §5.5, §5.5.1): pure parsing, no app."""

from __future__ import annotations

import json

import pytest

from idp.claims import InvalidClaimsRequestError, parse_claims_request, requested_acr_values


@pytest.mark.parametrize("raw", [
    json.dumps({"id_token": {"acr": {"values": 5}}}),
    json.dumps({"id_token": {"acr": {"values": ["cn-l1", 2]}}}),
    json.dumps({"id_token": {"acr": {"value": ["cn-l1"]}}}),
    json.dumps({"userinfo": {"name": {"essential": 1}}}),
    json.dumps({"userinfo": {"name": {"values": {"a": 1}}}}),
    "[" * 50000 + "]" * 50000,
    '{"a":' * 50000 + "1" + "}" * 50000,
])
def test_malformed_claims_request_is_refused(raw):
    with pytest.raises(InvalidClaimsRequestError):
        parse_claims_request(raw)


def test_well_formed_claims_request_gives_acr_values():
    parsed = parse_claims_request(json.dumps(
        {"id_token": {"acr": {"essential": True, "values": ["cn-l2", "cn-l1"]}},
         "userinfo": {"name": None, "phone_number": {"essential": False, "value": 13800138000}}}))
    # §5.5.1: a value of another claim may be any JSON; acr values are strings.
    assert requested_acr_values(None, parsed) == (["cn-l2", "cn-l1"], True)
