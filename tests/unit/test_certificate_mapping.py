"""Per-CA mapping profiles: identifiers in private extensions and subject attributes, in
every encoding Chinese CAs use (DESIGN.md §6, issue 4)."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certificates.der import DerError, decode_value, first_string
from certificates.mapping import DEFAULT_PROFILE, MappingProfile, map_certificate
from tests.support.pki import bmp, ctx, ia5, make_ca, make_leaf, printable, seq, set_of, tlv, utf8

USCC = "91350100M000100Y43"
ORG = "M000100Y4"


@pytest.fixture(scope="module")
def ca():
    return make_ca("Fujian CA", "Fujian")


@pytest.mark.parametrize(
    ("oid", "value", "kind", "expected"),
    [
        ("1.2.156.10260.4.4", printable(USCC), "uscc", USCC),  # GM/T 0015-2023
        ("1.2.156.10260.4.1.4", utf8(USCC), "uscc", USCC),
        ("1.2.156.10260.4.1.4", set_of(printable(ORG)), "org_code", ORG),
        ("1.2.156.10260.4.1.4", set_of(printable("M000100Y-4")), "org_code", ORG),  # hyphenated form
        ("1.2.156.10260.4.1.3", seq(ia5("350100100012345")), "reg_no", "350100100012345"),
        ("1.2.156.10260.4.1.5", ctx(0, utf8(USCC)), "uscc", USCC),
        ("1.2.86.11.7.4", USCC.encode(), "uscc", USCC),  # raw ASCII, no ASN.1
        ("1.2.86.11.7.3", tlv(0x04, printable(USCC)), "uscc", USCC),  # OCTET STRING wrapping DER
        ("1.2.86.11.7.4", tlv(0x04, ORG.encode()), "org_code", ORG),  # OCTET STRING wrapping text
        ("1.2.156.10260.4.4", bmp(USCC), "uscc", USCC),
        ("1.2.156.10260.4.4", ctx(1, USCC.encode(), constructed=False), "uscc", USCC),  # [1] IMPLICIT
    ],
)
def test_default_profile_finds_identifier(ca, oid, value, kind, expected):
    cert = make_leaf(ca, extensions=[(oid, value)])
    result = map_certificate(cert, DEFAULT_PROFILE)
    assert result.identifier is not None, result.trail
    assert (result.identifier.kind, result.identifier.value) == (kind, expected)
    assert result.name == "示例科技有限公司"


def test_organization_identifier_attribute(ca):
    # ETSI EN 319 412-1 §5.1.4: "NTR" + country + "-" + registration identifier.
    cert = make_leaf(ca, subject_extra=[x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRCN-{USCC}")])
    result = map_certificate(cert, DEFAULT_PROFILE)
    assert result.identifier is not None and result.identifier.value == USCC


def test_order_of_sources_decides(ca):
    other = "91110000600037341L"
    cert = make_leaf(ca, extensions=[("1.2.86.11.7.4", printable(other)), ("1.2.156.10260.4.4", printable(USCC))])
    result = map_certificate(cert, DEFAULT_PROFILE)
    assert result.identifier.value == USCC  # the GM/T 0015-2023 extension comes first


def test_malformed_identifier_is_refused_with_reason(ca):
    cert = make_leaf(ca, extensions=[("1.2.156.10260.4.4", printable("91350100M000100Y44"))])
    result = map_certificate(cert, DEFAULT_PROFILE)
    assert result.identifier is None and result.reason == "malformed_identifier"
    assert any("not a valid" in step for step in result.trail)


def test_no_identifier(ca):
    result = map_certificate(make_leaf(ca), DEFAULT_PROFILE)
    assert result.identifier is None and result.reason == "no_identifier"


def test_custom_profile_with_pattern(ca):
    profile = MappingProfile.from_json(
        '{"sources": [{"kind": "subject", "oid": "2.5.4.11", "pattern": "USCC:([0-9A-Z]{18})"}],'
        ' "name_oids": ["2.5.4.3"]}'
    )
    cert = make_leaf(ca, subject_extra=[x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"USCC:{USCC}")])
    result = map_certificate(cert, profile)
    assert result.identifier is not None and result.identifier.value == USCC


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"sources": []}',
        '{"sources": [{"kind": "issuer", "oid": "2.5.4.3"}]}',
        '{"sources": [{"kind": "subject", "oid": "not-an-oid"}]}',
        '{"sources": [{"kind": "subject", "oid": "2.5.4.3", "pattern": "("}]}',
        '{"sources": [{"kind": "subject", "oid": "2.5.4.3", "pattern": "no-group"}]}',
        '{"sources": [{"kind": "subject", "oid": "2.5.4.3", "yields": ["passport"]}]}',
        "not json",
    ],
)
def test_invalid_profiles_are_refused(text):
    with pytest.raises(ValueError):
        MappingProfile.from_json(text)


def test_profile_round_trips_through_json():
    again = MappingProfile.from_json(DEFAULT_PROFILE.to_json())
    assert again == DEFAULT_PROFILE


# -- fuzzing: no input crashes the decoder or the mapping ---------------------------


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_der_decoder_only_raises_der_error(data):
    try:
        first_string(data)
    except DerError:
        pass
    try:
        decode_value(data)
    except DerError:
        pass


nested = st.recursive(
    st.sampled_from([printable("A1"), utf8("统一"), ia5("x"), bmp("码"), b"\x04\x02ab", b"\x05\x00"]),
    lambda children: st.lists(children, max_size=3).map(lambda xs: tlv(0x30, b"".join(xs)))
    | st.lists(children, max_size=3).map(lambda xs: tlv(0x31, b"".join(xs)))
    | children.map(lambda x: tlv(0xA0, x)),
    max_leaves=10,
)


@given(nested)
@settings(max_examples=300)
def test_structured_der_never_crashes(data):
    try:
        first_string(data)
    except DerError:
        pass


@given(st.binary(max_size=200))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_mapping_never_crashes_on_arbitrary_extension_bytes(ca, data):
    cert = make_leaf(ca, extensions=[("1.2.156.10260.4.4", data), ("1.2.86.11.7.4", data)])
    result = map_certificate(cert, DEFAULT_PROFILE)
    assert result.identifier is None or result.identifier.kind in ("uscc", "org_code", "reg_no")
