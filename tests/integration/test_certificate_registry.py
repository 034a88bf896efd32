"""The CA trust registry (certificates/registry.py) on real PostgreSQL: PEM bundles are
checked before they are trusted, CRLs are accepted only from the CA they are for and only
forwards in time, and what validation gets (TrustedCa snapshots) follows enable/disable
at once. Issue 4 "Trust registry"; RFC 5280 §4.2.1.3, §4.2.1.9, §5."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from certificates.mapping import DEFAULT_PROFILE, MappingProfile, Source
from certificates.models import CertificateAuthority
from certificates.registry import (
    CaNotFoundError,
    CaService,
    DuplicateCaError,
    InvalidCaBundleError,
    InvalidCrlError,
    InvalidProfileError,
    TrustedCaCache,
    try_profile,
)
from certificates.trust import CertificateRejectedError, RejectionReason
from certificates.validation import CertificateValidator
from common.db import db
from common.errors import ValidationError
from tests.support.pki import (
    PRIVATE_OID,
    SIGNING,
    issue_leaf,
    make_ca,
    make_crl,
    make_sub_ca,
    printable,
    sm2_variant,
    three_provinces,
)

USCC = "91350100M000100Y43"


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.fixture(scope="module")
def provinces():
    return three_provinces()


@pytest.fixture
def cas(services, clock) -> CaService:
    return CaService(services.session, clock=clock)


def _count() -> int:
    db.session.expire_all()
    return int(db.session.scalar(select(func.count()).select_from(CertificateAuthority)))


def _add(cas: CaService, p, **kwargs):
    return cas.add(name=p.name, province=p.province, pem_bundle=pem(p.root.cert, p.intermediate.cert),
                   profile=p.profile, **kwargs)


# -- registration ----------------------------------------------------------------------


def test_add_stores_bundle_profile_and_revocation_sources(cas, provinces):
    fujian, _, beijing = provinces
    row = _add(cas, fujian, crl_urls=["http://crl.fujian.example.test/ca.crl"],
               ocsp_url="http://ocsp.fujian.example.test/")
    _add(cas, beijing)
    db.session.commit()

    trusted = {ca.name: ca for ca in cas.trusted()}
    assert set(trusted) == {"Fujian CA", "Beijing CA"}
    ca = trusted["Fujian CA"]
    assert ca.ca_id == row.id and ca.province == "Fujian"
    # The bundle is split into self-signed anchors and intermediates.
    assert ca.roots == (fujian.root.cert,)
    assert ca.intermediates == (fujian.intermediate.cert,)
    assert ca.crl_urls == ("http://crl.fujian.example.test/ca.crl",)
    assert ca.ocsp_url == "http://ocsp.fujian.example.test/"
    assert ca.crl_der is None
    # Profiles round-trip through the JSON column unchanged.
    assert ca.profile == DEFAULT_PROFILE
    assert trusted["Beijing CA"].profile == beijing.profile != DEFAULT_PROFILE


def _self_signed_with_wrong_key() -> x509.Certificate:
    good = make_ca("Forged CA", "Nowhere")
    other = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder().subject_name(good.name).issuer_name(good.name).public_key(good.key.public_key())
        .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(other, hashes.SHA256())
    )


def _expired_root() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Old Root")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(2).not_valid_before(now - timedelta(days=400)).not_valid_after(now - timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _bad_bundles():
    root = make_ca("Bundle CA", "Hebei")
    sub = make_sub_ca(root, "Bundle Issuing CA")
    stranger = make_sub_ca(make_ca("Other CA", "Hunan"), "Other Issuing CA")
    leaf = issue_leaf(sub, extensions=[("1.2.156.10260.4.4", printable(USCC))])
    no_cert_sign = make_sub_ca(root, "Signing-only CA", key_usage=SIGNING)
    no_bc = make_sub_ca(root, "No BC CA", ca=None)
    return [
        ("garbage", b"not a pem file", "no readable PEM certificate"),
        # RFC 5280 §4.2.1.9: an end-entity certificate cannot anchor anything.
        ("leaf", pem(root.cert, leaf.cert), "is not a CA certificate"),
        ("no basicConstraints", pem(root.cert, no_bc.cert), "is not a CA certificate"),
        # RFC 5280 §4.2.1.3: keyUsage present without keyCertSign.
        ("no keyCertSign", pem(root.cert, no_cert_sign.cert), "lacks keyCertSign"),
        ("intermediate only", pem(sub.cert), "no self-signed root"),
        ("orphan intermediate", pem(root.cert, stranger.cert), "is not issued by a certificate in the bundle"),
        ("bad self-signature", pem(_self_signed_with_wrong_key()), "bad self-signature"),
        ("expired root", pem(_expired_root()), "has expired"),
    ]


@pytest.mark.parametrize(("label", "bundle", "message"), _bad_bundles(), ids=lambda v: v if isinstance(v, str) else "")
def test_bad_bundles_are_refused_with_a_reason(cas, label, bundle, message):
    with pytest.raises(InvalidCaBundleError) as info:
        cas.add(name=f"CA {label}", province="Hebei", pem_bundle=bundle)
    assert message in info.value.public_message
    assert info.value.code == "invalid_ca_bundle"
    assert _count() == 0


def test_a_root_anchors_one_ca_only(cas, provinces):
    fujian, guangdong, _ = provinces
    _add(cas, fujian)
    db.session.commit()
    # Same root under another name (e.g. with only the root): which CA's profile applies
    # would depend on order, so it is refused.
    with pytest.raises(DuplicateCaError):
        cas.add(name="Fujian again", province="Fujian", pem_bundle=pem(fujian.root.cert))
    # Same name, different CA.
    with pytest.raises(DuplicateCaError):
        cas.add(name="Fujian CA", province="Guangdong", pem_bundle=pem(guangdong.root.cert))
    assert _count() == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"crl_urls": ["ftp://crl.example.test/a.crl"]}, "CRL URL"),
    ({"crl_urls": ["file:///etc/passwd"]}, "CRL URL"),
    ({"ocsp_url": "ldap://ocsp.example.test"}, "OCSP URL"),
    ({"name": "  "}, "CA name"),
    ({"province": ""}, "province"),
])
def test_invalid_fields_are_refused(cas, provinces, kwargs, message):
    p = provinces[0]
    args = {"name": p.name, "province": p.province, "pem_bundle": pem(p.root.cert), **kwargs}
    with pytest.raises(ValidationError) as info:
        cas.add(**args)
    assert message in info.value.public_message
    assert _count() == 0


def test_unknown_ca_id(cas):
    with pytest.raises(CaNotFoundError):
        cas.disable(424242)


# -- enable / disable and the snapshot cache --------------------------------------------


def test_disable_takes_effect_at_once_on_this_instance(services, clock, provinces):
    cache = TrustedCaCache(ttl=3600)
    cas = CaService(services.session, clock=clock, cache=cache)
    fujian, guangdong, _ = provinces
    f = _add(cas, fujian)
    _add(cas, guangdong)
    db.session.commit()
    assert [c.name for c in cas.trusted()] == ["Fujian CA", "Guangdong CA"]

    cas.disable(f.id)
    db.session.commit()
    assert [c.name for c in cas.trusted()] == ["Guangdong CA"]
    # Validation gets the disabled CAs separately, to say CA_DISABLED, not UNKNOWN_ISSUER.
    assert [c.name for c in cas.disabled()] == ["Fujian CA"]
    leaf = fujian.issue(USCC)
    validator = CertificateValidator(clock)
    with pytest.raises(CertificateRejectedError) as info:
        validator.validate(leaf.der, [], cas.trusted(), production=False, disabled_cas=cas.disabled())
    assert info.value.reason is RejectionReason.CA_DISABLED

    cas.enable(f.id)
    db.session.commit()
    assert [c.name for c in cas.trusted()] == ["Fujian CA", "Guangdong CA"]


def test_snapshots_are_cached_until_invalidated(services, clock, provinces):
    # Policy (TrustedCaCache): other instances see a change within the TTL; within it the
    # snapshot is served from memory, so the hot path does not parse PEM per login.
    cache = TrustedCaCache(ttl=3600)
    cas = CaService(services.session, clock=clock, cache=cache)
    row = _add(cas, provinces[0])
    db.session.commit()
    first = cas.trusted()
    # Another instance disables the CA (a direct change, bypassing this cache).
    row.enabled = False
    db.session.commit()
    assert cas.trusted() is not None and cas.trusted()[0] is first[0]
    cache.invalidate()
    assert cas.trusted() == ()


def test_an_unchanged_crl_is_not_read_again_and_keeps_its_bytes(services, clock, provinces):
    # Issue 10 benchmark: with a 100,000-entry CRL every reload read and re-hashed megabytes.
    cache = TrustedCaCache(ttl=0)  # every call reloads the snapshot
    cas = CaService(services.session, clock=clock, cache=cache)
    p = provinces[0]
    row = _add(cas, p)
    cas.load_crl(row.id, make_crl(p.intermediate, []))
    db.session.commit()
    first = cas.trusted()[0].crl_der
    db.session.expire_all()  # as a later request's session would: nothing cached in the ORM
    second = cas.trusted()[0].crl_der
    assert first is not None and second is first  # the same object: the checker's fast path
    clock.advance(60)
    cas.load_crl(row.id, make_crl(p.intermediate, [12345]))
    db.session.commit()
    third = cas.trusted()[0].crl_der
    assert third is not first and third == cas.get(row.id).crl_der


def test_one_thread_reloads_while_the_others_keep_the_snapshot():
    import threading

    cache = TrustedCaCache(ttl=0)
    cache.get(lambda: ())  # a first snapshot
    entered, release = threading.Event(), threading.Event()

    def slow_load():
        entered.set()
        release.wait(5)
        return ()

    reloader = threading.Thread(target=cache.get, args=(slow_load,))
    reloader.start()
    assert entered.wait(5)
    loads = []
    # Another thread while the reload runs: the previous snapshot, no second load.
    assert cache.get(lambda: loads.append(1) or ()) == ()
    assert loads == []
    release.set()
    reloader.join(5)


# -- CRLs -----------------------------------------------------------------------------------


def test_loaded_crl_is_what_validation_uses(cas, clock, provinces):
    fujian = provinces[0]
    row = _add(cas, fujian)
    revoked = fujian.issue(USCC)
    good = fujian.issue(USCC)
    state = cas.load_crl(row.id, make_crl(fujian.intermediate, [revoked.cert.serial_number], number=7))
    db.session.commit()
    assert (state.crl_number, state.entries) == (7, 1)
    db.session.expire_all()
    stored = cas.get(row.id)
    assert stored.crl_number == "7" and stored.crl_der is not None
    assert stored.crl_next_update is not None and stored.crl_next_update > clock.now()

    validator = CertificateValidator(clock)
    # RFC 5280 §6.3: the serial is on the CA's CRL → revoked; another one passes.
    with pytest.raises(CertificateRejectedError) as info:
        validator.validate(revoked.der, [], cas.trusted(), production=False)
    assert info.value.reason is RejectionReason.REVOKED
    assert validator.validate(good.der, [], cas.trusted(), production=False).ca.ca_id == row.id


def test_crl_without_any_loaded_fails_closed(cas, clock, provinces):
    # Issue 4: unknown revocation status fails closed unless the profile says otherwise.
    fujian = provinces[0]
    _add(cas, fujian)
    with pytest.raises(CertificateRejectedError) as info:
        CertificateValidator(clock).validate(fujian.issue(USCC).der, [], cas.trusted(), production=False)
    assert info.value.reason is RejectionReason.REVOCATION_UNKNOWN


def test_crl_accepts_pem(cas, provinces):
    fujian = provinces[0]
    row = _add(cas, fujian)
    der = make_crl(fujian.intermediate, [], number=3)
    text = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
    assert cas.load_crl(row.id, text).crl_number == 3


def test_crl_signed_by_the_root_for_the_intermediate_is_accepted(cas, provinces):
    fujian = provinces[0]
    row = _add(cas, fujian)
    state = cas.load_crl(row.id, make_crl(fujian.root, [fujian.intermediate.cert.serial_number]))
    assert state.issuer == fujian.root.name.rfc4514_string()


def _crl_cases(p, other, now):
    forged_key = ec.generate_private_key(ec.SECP256R1())
    return [
        # RFC 5280 §6.3.3 (f): the CRL must verify with the CA's key.
        ("forged", make_crl(p.intermediate, [], signer_key=forged_key), "signature does not verify"),
        ("other CA", make_crl(other.intermediate, []), "not issued by this certificate authority"),
        ("stale", make_crl(p.intermediate, [], now=now - timedelta(days=10), next_update=now - timedelta(days=1)),
         "out of date"),
        ("garbage", b"\x30\x03\x02\x01\x01", "could not be read"),
    ]


def test_bad_crls_are_refused_and_change_nothing(cas, clock, provinces):
    fujian, guangdong, _ = provinces
    row = _add(cas, fujian)
    cas.load_crl(row.id, make_crl(fujian.intermediate, [], number=1))
    db.session.commit()
    before = cas.get(row.id).crl_der
    for label, data, message in _crl_cases(fujian, guangdong, clock.now()):
        with pytest.raises(InvalidCrlError) as info:
            cas.load_crl(row.id, data)
        assert message in info.value.public_message, label
    db.session.rollback()
    db.session.expire_all()
    assert cas.get(row.id).crl_der == before


def test_an_older_crl_cannot_replace_a_newer_one(cas, clock, provinces):
    # RFC 5280 §5.2.3: CRL numbers increase; replaying an old CRL would un-revoke.
    fujian = provinces[0]
    row = _add(cas, fujian)
    cas.load_crl(row.id, make_crl(fujian.intermediate, [12345], number=5))
    with pytest.raises(InvalidCrlError) as info:
        cas.load_crl(row.id, make_crl(fujian.intermediate, [], number=4))
    assert "lower CRL number" in info.value.public_message
    # An older thisUpdate with a higher number is still older.
    with pytest.raises(InvalidCrlError) as info:
        cas.load_crl(row.id, make_crl(fujian.intermediate, [], number=6, now=clock.now() - timedelta(hours=2)))
    assert "earlier thisUpdate" in info.value.public_message
    assert cas.load_crl(row.id, make_crl(fujian.intermediate, [], number=6)).crl_number == 6
    assert cas.get(row.id).crl_number == "6"


# -- SM2 ----------------------------------------------------------------------------------------


def test_relabelled_sm2_root_is_refused_at_registration(cas, clock):
    # Issue 10: a root whose key says sm2p256v1 but is a P-256 point cannot be registered;
    # the operator is told why (real SM2 CAs: test_sm2_registry.py).
    root = make_ca("SM2 CA", "Zhejiang")
    sm2_root = x509.load_der_x509_certificate(sm2_variant(root.cert))
    with pytest.raises(InvalidCaBundleError) as info:
        cas.add(name="SM2 CA", province="Zhejiang", pem_bundle=pem(sm2_root))
    assert "not a point on the SM2 curve" in info.value.public_message
    assert cas.all() == []


# -- profiles -------------------------------------------------------------------------------------


def test_profile_is_tried_on_a_sample_before_it_is_saved(cas, provinces):
    fujian, _, beijing = provinces
    row = _add(cas, fujian)
    sample = beijing.issue(USCC).cert.public_bytes(serialization.Encoding.PEM)
    # The default profile does not know Beijing's private extension: the trail says why.
    result = try_profile(DEFAULT_PROFILE, sample)
    assert result.identifier is None and result.reason == "no_identifier"
    assert "extension 1.2.156.10260.4.4: absent" in result.trail

    with pytest.raises(InvalidProfileError):
        cas.set_profile(row.id, DEFAULT_PROFILE, sample=sample)
    private = MappingProfile(sources=(Source("extension", PRIVATE_OID, ("uscc",), None, ("USCC:",)),))
    mapped = cas.set_profile(row.id, private, sample=sample)
    assert mapped is not None and mapped.identifier is not None and mapped.identifier.value == USCC
    db.session.commit()
    assert cas.trusted_by_id(row.id).profile == private


def test_map_sample_tries_every_enabled_ca(cas, provinces):
    fujian, guangdong, beijing = provinces
    rows = [_add(cas, p) for p in provinces]
    cas.disable(rows[1].id)
    sample = beijing.issue(USCC).der
    results = {ca.name: (mapping, issuer_match) for ca, mapping, issuer_match in cas.map_sample(sample)}
    assert set(results) == {"Fujian CA", "Beijing CA"}  # Guangdong is disabled
    assert results["Beijing CA"][0].identifier.value == USCC and results["Beijing CA"][1] is True
    assert results["Fujian CA"][0].identifier is None and results["Fujian CA"][1] is False
    # --ca: one CA's profile, even a disabled one.
    [(ca, mapping, match)] = cas.map_sample(guangdong.issue(USCC).der, ca_id=rows[1].id)
    assert ca.name == "Guangdong CA" and mapping.identifier.value == USCC and match is True
