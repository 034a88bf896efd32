"""The admin API's request rules, as the pydantic models declare them (issue 11): strict
JSON types, no control characters but in PEM text, lengths, patterns, the protocol's
vocabularies, list and object sizes, nullability, "at least one field", field paths in
errors, at most 20 errors; and the published document generated from the same models."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from admin.api.accounts import AccountList, AccountSearch, ReidentifyRequest, RevealRequest
from admin.api.audit import AuditSearch
from admin.api.bodies import MAX_ERRORS, FieldValidationError, parse_body, parse_params
from admin.api.cas import CaCreate, CaUpdate, CrlUpload, MappingPreviewRequest
from admin.api.clients import ClientCreate, ClientUpdate
from admin.api.keys import KeyRetire, KeyRotate
from admin.api.routes import openapi_document
from idp import protocol

URI = "https://portal.example.test/cb"
PEM = "-----BEGIN CERTIFICATE-----\r\n\tMIIB\n-----END CERTIFICATE-----\n"
SUB = "A" * 42 + "_"


def _errors(model: type[BaseModel], body: Any) -> list[tuple[str, str]]:
    """The (field, message) pairs ``body`` (JSON data, or raw bytes) earns; [] when accepted."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        parse_body(model, raw)
    except FieldValidationError as exc:
        assert exc.code == "invalid_input" and exc.status_code == 422
        return exc.errors
    return []


def _fields(model: type[BaseModel], body: Any) -> list[str]:
    return [field for field, _ in _errors(model, body)]


def _client(**members: Any) -> dict[str, Any]:
    return {"name": "Housing Portal", "redirect_uris": [URI], **members}


def test_a_valid_registration_is_accepted_and_only_what_was_sent_is_passed_on():
    body = parse_body(ClientCreate, json.dumps(_client(backchannel_logout_uri=None)).encode())
    assert body.model_dump(exclude_unset=True) == {"name": "Housing Portal", "redirect_uris": [URI],
                                                   "backchannel_logout_uri": None}


@pytest.mark.parametrize(("body", "field"), [
    (_client(name=1), "name"),  # 1 is no string
    (_client(redirect_uris=[URI, 7]), "redirect_uris/1"),
    (_client(public=1), "public"),  # 1 is no boolean
    (_client(sensitive_claims_allowed="true"), "sensitive_claims_allowed"),
])
def test_types_are_not_coerced_in_bodies(body, field):
    assert _fields(ClientCreate, body) == [field]


@pytest.mark.parametrize("limit", ["10", True, 10.0])
def test_a_body_integer_is_an_integer(limit):
    # "10" is no integer, and neither is true (a boolean) nor 10.0.
    assert _fields(AccountSearch, {"limit": limit}) == ["limit"]
    assert _fields(MappingPreviewRequest, {"certificate_pem": PEM, "ca_id": limit}) == ["ca_id"]
    assert _fields(AccountSearch, {"limit": 10}) == []


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\x7f", "\n", "\t"])
def test_no_control_characters_in_text(char):
    assert _errors(ClientCreate, _client(name=f"Portal{char}")) == [("name", "must not contain control characters")]
    assert _fields(ClientCreate, _client(redirect_uris=[URI + char])) == ["redirect_uris/0"]
    assert _fields(RevealRequest, {"reason": f"a lawful request{char}"}) == ["reason"]


def test_pem_text_may_hold_line_breaks_and_tabs_but_no_other_control_character():
    ca = {"name": "CA", "province": "Fujian", "pem_bundle": PEM}
    assert _errors(CaCreate, ca) == []
    assert _fields(CaCreate, {**ca, "pem_bundle": PEM + "\x00"}) == ["pem_bundle"]
    assert _fields(CrlUpload, {"pem": PEM + "\x1b"}) == ["pem"]
    assert _fields(CaCreate, {**ca, "name": "Fujian\nCA"}) == ["name"]  # not PEM: no line breaks


def test_lengths():
    assert _errors(ClientCreate, _client(name="x" * 200)) == []
    assert _fields(ClientCreate, _client(name="x" * 201)) == ["name"]
    assert _fields(ClientCreate, _client(name="")) == ["name"]
    assert _fields(ClientCreate, _client(redirect_uris=[""])) == ["redirect_uris/0"]
    assert [_fields(RevealRequest, {"reason": "x" * n}) for n in (9, 10, 500, 501)] == [["reason"], [], [], ["reason"]]


def test_patterns():
    request = {"client_id": "portal", "sub": SUB, "reason": "x" * 10, "requested_by": "Court 42"}
    assert _errors(ReidentifyRequest, request) == []
    assert _errors(ReidentifyRequest, {**request, "sub": SUB[:-1]}) == [("sub", "String should match pattern "
                                                                                "'^[A-Za-z0-9_-]{43}$'")]
    assert _fields(ReidentifyRequest, {**request, "sub": SUB[:-1] + "+"}) == ["sub"]
    assert _fields(AccountSearch, {"cursor": "12a"}) == ["cursor"]
    assert _fields(CrlUpload, {"der_base64": "not base64!"}) == ["der_base64"]
    assert _fields(CaCreate, {"name": "CA", "province": "P", "pem_bundle": PEM,
                              "profile": {"sources": [{"kind": "subject", "oid": "2.5.4.05"}]}}) == [
        "profile/sources/0/oid"]


@pytest.mark.parametrize(("member", "values"), [("grant_types", protocol.GRANT_TYPES),
                                                ("token_endpoint_auth_method", protocol.AUTH_METHODS)])
def test_vocabularies_are_the_protocols(member, values):
    for value in values:
        body = _client(**{member: [value] if member == "grant_types" else value})
        assert _errors(ClientCreate, body) == [], value
    refused = _client(**{member: ["password"] if member == "grant_types" else "password"})
    assert _fields(ClientCreate, refused) == [f"{member}/0" if member == "grant_types" else member]
    schema = openapi_document("https://idp.example.test")["components"]["schemas"]["ClientCreate"]["properties"]
    published = schema[member]["items"]["enum"] if member == "grant_types" else schema[member]["enum"]
    assert published == list(values)


def test_list_and_object_sizes():
    assert _errors(ClientCreate, _client(redirect_uris=[URI] * 50)) == []
    assert _errors(ClientCreate, _client(redirect_uris=[URI] * 51)) == [("redirect_uris", "at most 50 items")]
    rule = {"purpose": "Shown to the citizen"}
    assert _errors(ClientCreate, _client(claim_policy={f"c{i}": rule for i in range(50)})) == []
    assert _errors(ClientCreate, _client(claim_policy={f"c{i}": rule for i in range(51)})) == [
        ("claim_policy", "at most 50 entries")]
    assert _fields(ClientCreate, _client(claim_policy={"x" * 65: rule})) == ["claim_policy/" + "x" * 65]
    assert _fields(ClientCreate, _client(claim_policy={"e\x00": rule})) == ["claim_policy/e\x00"]
    assert _fields(ClientCreate, _client(jwks={"keys": [{}] * 21})) == ["jwks/keys"]


def test_null_only_where_documented():
    assert _errors(ClientCreate, _client(backchannel_logout_uri=None, jwks=None, sector_identifier_uri=None)) == []
    for member in ("name", "redirect_uris", "scopes", "claim_policy", "first_party"):
        assert _errors(ClientUpdate, {member: None}) == [(member, "must not be null")], member
    assert _fields(KeyRotate, {"alg": None}) == ["alg"]
    assert _fields(KeyRetire, {"unpublish": None}) == ["unpublish"]
    schema = openapi_document("https://idp.example.test")["components"]["schemas"]["ClientUpdate"]["properties"]
    assert "anyOf" not in schema["redirect_uris"] and {"type": "null"} in schema["backchannel_logout_uri"]["anyOf"]


def test_required_unknown_and_at_least_one_field():
    assert _errors(ClientCreate, {"redirect_uris": [URI]}) == [("name", "is required")]
    assert _errors(ClientCreate, _client(colour="red")) == [("colour", "is not a known field")]
    assert _errors(ClientUpdate, {}) == [("body", "must name at least one field")]
    assert _errors(ClientUpdate, {"name": "Renamed"}) == []
    assert _fields(CaUpdate, {}) == ["body"]
    assert _fields(CrlUpload, {}) == ["body"]
    assert _fields(CrlUpload, {"pem": PEM, "der_base64": "eA=="}) == ["body"]
    assert _errors(CrlUpload, {"der_base64": "eA=="}) == []


def test_fields_are_paths():
    assert _fields(ClientCreate, _client(claim_policy={"email": {"basis": "consent"}})) == ["claim_policy/email/purpose"]
    assert _fields(ClientCreate, _client(claim_policy={"email": {"purpose": "p", "basis": "whim"}})) == [
        "claim_policy/email/basis"]
    profile = {"sources": [{"kind": "registry", "oid": "1.2.3"}]}
    assert _fields(CaCreate, {"name": "CA", "province": "P", "pem_bundle": PEM, "profile": profile}) == [
        "profile/sources/0/kind"]


def test_at_most_twenty_errors():
    errors = _errors(ClientCreate, _client(redirect_uris=list(range(50))))
    assert len(errors) == MAX_ERRORS == 20 and errors[0] == ("redirect_uris/0", "Input should be a valid string")


@pytest.mark.parametrize("raw", [
    b"{not json",
    b'{"name": "\\ud800", "redirect_uris": []}',  # RFC 8259 §8.2: a lone surrogate is no text
    b'{"name": "\xed\xa0\x80"}',  # the same surrogate as (CESU-8) bytes: no UTF-8
    b'{"name": "\xff"}',
    b"[" * 10_000 + b"]" * 10_000,
    b'{"name": "x"} trailing',
])
def test_text_that_is_not_json_is_a_body_error(raw):
    assert _errors(ClientCreate, raw) == [("body", "is not JSON")]


@pytest.mark.parametrize("raw", [b"[1]", b"null", b'"name"', b"42"])
def test_a_body_is_an_object(raw):
    assert _errors(ClientCreate, raw) == [("body", "must be an object")]


@pytest.mark.parametrize("text", ["+5", "5.0", "1_0", " 5", "٣", "²", "5e0", "1234567890", ""])
def test_query_integers_are_ascii_digits(text):
    with pytest.raises(FieldValidationError) as refused:
        parse_params(AccountList, {"limit": text})
    assert refused.value.errors == [("limit", "must be integer")]


def test_query_parameters_keep_their_rules():
    assert parse_params(AuditSearch, {"limit": "500", "outcome": "denied"}).limit == 500
    assert parse_params(AccountList, {}).limit == 50
    for values, field in (({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"outcome": "maybe"}, "outcome"),
                          ({"actor": "zhangsan"}, "actor"), ({"action": "login\x00"}, "action"),
                          ({"cursor": "x" * 201}, "cursor")):
        with pytest.raises(FieldValidationError) as refused:
            parse_params(AuditSearch, values)
        assert [f for f, _ in refused.value.errors] == [field], values


# Names API consumers generate code from: kept as they were before the models (issue 11).
COMPONENTS = """Problem Me ClientCreate ClientUpdate Client ClientWithSecret ClientPage ClientSecret ClientUsage Key
KeyList KeyRotate KeyRetire AuditEvent AuditEventPage AuditTrailStatus AuditBrokenLink AuditVerification Alert
AlertList MappingProfile CaCertificate Ca CaList CaCreate CaUpdate CrlUpload CrlState MappingPreviewRequest
MappingPreview LegalPerson LegalPersonPage Credential Mandate LegalPersonDetail AccountSummary AccountSearch
AccountPage AccountDetail AccountStatusChange SecondFactorReset RevealRequest IdNumberReveal ReidentifyRequest
ResolvedSubject Reidentification SsoSession SsoSessionList SessionsEnded""".split()


def test_the_document_keeps_its_component_names_and_descriptions():
    schemas = openapi_document("https://idp.example.test")["components"]["schemas"]
    assert set(COMPONENTS) <= set(schemas)
    # One schema per model: none is split into -Input/-Output variants.
    assert not [name for name in schemas if "-" in name]
    assert schemas["RevealRequest"]["properties"]["reason"]["description"] == (
        "Why (PIPL Art. 6 purpose); audited as a keyed hash and length, never as text.")
    assert schemas["ClientUpdate"]["minProperties"] == 1
    assert schemas["CrlUpload"]["minProperties"] == schemas["CrlUpload"]["maxProperties"] == 1
    assert schemas["CaCreate"]["properties"]["pem_bundle"]["contentMediaType"] == "application/x-pem-file"
    assert schemas["MappingProfile"]["description"].startswith("Where a CA's certificates carry")
    # No generated titles, and no defaults: an omitted member is the service's to fill.
    assert not any("title" in s for s in schemas.values())
    assert "default" not in {k for s in schemas.values() for k in _keys(s)} and "maxLength" in _keys(schemas["ClientCreate"])


def _keys(schema: Any) -> set[str]:
    """Every keyword used in ``schema`` (property names are not keywords)."""
    if isinstance(schema, list):
        return {k for item in schema for k in _keys(item)}
    if not isinstance(schema, dict):
        return set()
    out = set(schema)
    for key, value in schema.items():
        children = value.values() if key == "properties" else [value]
        out |= {k for child in children for k in _keys(child)}
    return out
