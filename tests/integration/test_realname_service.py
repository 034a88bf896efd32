"""Real-name verification service on PostgreSQL + Redis: binding, duplicates, throttling,
registry faults, phone carrier check, TOTP enrollment and recovery codes, key rotation."""

from __future__ import annotations

from datetime import date

import pyotp
import pytest

from common.crypto import FieldCipher
from common.db import db
from realname.errors import (
    DuplicateIdentityError,
    RealnameInputError,
    RegistryUnavailableError,
    VerificationFailedError,
    VerificationThrottledError,
)
from realname.importer import ImportReport, RegistryImporter, RegistryRow
from realname.models import Identity
from realname.registry import HttpRegistry, HttpRegistryConfig, LocalRegistry
from realname.service import RealnameService, parse_identity_input
from realname.settings import RealnameSettings

TODAY = date(2026, 11, 25)
NUMBER = "11010519491231002X"


@pytest.fixture
def registry_rows(services):
    RegistryImporter(db.session, services.p.hasher, services.p.clock.now()).load(
        [RegistryRow("张三", NUMBER, "13800138000"), RegistryRow("李四", "440524188001010014")], ImportReport()
    )
    db.session.commit()


def make_service(services, registry=None, **settings):
    p = services.p
    return RealnameService(
        db.session, store=p.store, clock=p.clock, hasher=p.hasher, cipher=p.cipher,
        registry=registry or LocalRegistry(db.session, p.hasher), settings=RealnameSettings(**settings),
    )


def account(services, username="alice2"):
    acct = services.accounts.create(username=username, password="a long enough secret")
    db.session.commit()
    return acct


def test_verify_and_bind(services, registry_rows):
    svc = make_service(services)
    acct = account(services)
    name, rid = parse_identity_input(" 张 三 ", NUMBER.lower(), today=TODAY)
    svc.check_registry(name, rid, account_key="a", client_ip="1.2.3.4")
    identity = svc.bind_identity(acct.id, name, rid)
    assert identity.proofing_level == "cn-l1" and identity.verified_by == "local"
    assert identity.id_number_masked == "110105********002X"
    assert NUMBER not in identity.id_number_enc and "张三" not in identity.name_enc
    assert svc.account_for_id_number(NUMBER) == acct.id
    assert svc.level_of(acct.id) == "cn-l1"
    view = svc.view(identity)
    assert view.masked_name == "张*" and not view.phone_bound


def test_one_person_one_account(services, registry_rows):
    svc = make_service(services)
    first, second = account(services, "first"), account(services, "second")
    name, rid = parse_identity_input("张三", NUMBER, today=TODAY)
    svc.bind_identity(first.id, name, rid)
    with pytest.raises(DuplicateIdentityError):
        svc.bind_identity(second.id, name, rid)
    db.session.commit()
    assert db.session.query(Identity).count() == 1


@pytest.mark.parametrize(("name", "number"), [("张四", NUMBER), ("张三", "110101199003070011")])
def test_negative_answers_share_one_error(services, registry_rows, name, number):
    svc = make_service(services)
    n, rid = parse_identity_input(name, number, today=TODAY)
    with pytest.raises(VerificationFailedError) as exc:
        svc.check_registry(n, rid, account_key="a", client_ip="1.2.3.4")
    assert exc.value.public_message == VerificationFailedError.public_message


def test_input_errors_name_the_field():
    with pytest.raises(RealnameInputError) as exc:
        parse_identity_input("Zhang", NUMBER, today=TODAY)
    assert exc.value.field == "name"
    with pytest.raises(RealnameInputError) as exc:
        parse_identity_input("张三", "110105194912310021", today=TODAY)
    assert exc.value.field == "id_number" and "check character" in exc.value.public_message


def test_verification_is_rate_limited(services, registry_rows):
    svc = make_service(services, verify_max_per_account_hour=2)
    name, rid = parse_identity_input("张四", NUMBER, today=TODAY)
    for _ in range(2):
        with pytest.raises(VerificationFailedError):
            svc.check_registry(name, rid, account_key="acct-9", client_ip="1.2.3.4")
    with pytest.raises(VerificationThrottledError):
        svc.check_registry(name, rid, account_key="acct-9", client_ip="1.2.3.4")


def test_registry_down_raises_unavailable(services):
    down = HttpRegistry(HttpRegistryConfig(url="http://127.0.0.1:1/verify", key_id="k", key=b"k" * 32,
                                           timeout=0.3, retries=0))
    svc = make_service(services, registry=down)
    name, rid = parse_identity_input("张三", NUMBER, today=TODAY)
    with pytest.raises(RegistryUnavailableError):
        svc.check_registry(name, rid, account_key="a", client_ip="1.2.3.4")


def test_phone_carrier_check(services, registry_rows):
    svc = make_service(services)
    acct = account(services)
    name, rid = parse_identity_input("张三", NUMBER, today=TODAY)
    identity = svc.bind_identity(acct.id, name, rid)
    assert not svc.bind_phone(identity, "13900000000", client_ip="1.2.3.4")
    assert svc.level_of(acct.id) == "cn-l1"
    assert svc.bind_phone(identity, "13800138000", client_ip="1.2.3.4")
    assert svc.level_of(acct.id) == "cn-l2"


def test_totp_enrollment_and_recovery_codes(services, clock):
    svc = make_service(services)
    acct = account(services)
    secret = svc.start_totp_enrollment(acct.id, pyotp.random_base32(32))
    assert svc.confirm_totp(acct.id, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111") is None
    codes = svc.confirm_totp(acct.id, pyotp.TOTP(secret).at(clock.timestamp()))
    assert codes is not None and len(codes) == 10
    assert svc.has_totp(acct.id)
    clock.advance(60)
    assert svc.verify_totp(acct.id, pyotp.TOTP(secret).at(clock.timestamp()))
    assert svc.use_recovery_code(acct.id, codes[0])
    assert not svc.use_recovery_code(acct.id, codes[0])  # single use
    other = account(services, "other")
    assert not svc.use_recovery_code(other.id, codes[1])  # bound to its account
    svc.reset_factors(acct.id)
    assert not svc.has_totp(acct.id)


def test_reencrypt_after_data_key_rotation(services, registry_rows):
    svc = make_service(services)
    acct = account(services)
    name, rid = parse_identity_input("张三", NUMBER, today=TODAY)
    svc.bind_identity(acct.id, name, rid)
    db.session.commit()
    # The test settings' data key (conftest) plus a new active one.
    rotated = FieldCipher({"t1": b"test-data-key-test-data-key-32by", "new": b"n" * 32}, "new")
    p = services.p
    new_svc = RealnameService(db.session, store=p.store, clock=p.clock, hasher=p.hasher, cipher=rotated,
                              registry=LocalRegistry(db.session, p.hasher), settings=RealnameSettings())
    assert new_svc.reencrypt_batch(limit=10) == 1
    assert new_svc.reencrypt_batch(limit=10) == 0
    identity = new_svc.identity_of(acct.id)
    assert identity.name_enc.startswith("v1.new.") and new_svc.name_of(identity) == "张三"
    assert new_svc.id_number_of(identity) == NUMBER
