"""The settings object (config/settings.py): production guards (STYLE.md
"Configuration", SECURITY.md) and issuer shape (OIDC Discovery §3, RFC 8414 §2)."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from config.settings import ConfigurationError, Settings

INDEX_KEY = base64.urlsafe_b64encode(b"i" * 32).decode().rstrip("=")
DATA_KEYS = "k1:" + base64.urlsafe_b64encode(b"d" * 32).decode().rstrip("=")


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch):
    # Settings read YIWANG_* variables; the tests build every value explicitly.
    import os

    for name in list(os.environ):
        if name.startswith("YIWANG_"):
            monkeypatch.delenv(name)


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "issuer": "https://idp.example.gov.cn",
        "secret_key": "s" * 40,
        "index_key": INDEX_KEY,
        "data_keys": DATA_KEYS,
        "database_url": "postgresql+psycopg://yiwang@db/yiwang",
        "redis_url": "redis://redis:6379/0",
        "workers": 4,
        "registry_adapter": "http",
        "registry_url": "https://registry.example.gov.cn/verify",
        "registry_key": INDEX_KEY,
        "sms_sender": "http",
        "sms_url": "https://sms.example.gov.cn/send",
        "sms_key": INDEX_KEY,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _refused(settings: Settings, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        settings.check_production()
    assert fragment in str(info.value)


def test_valid_production_settings_pass():
    settings = production()
    settings.check_production()
    keys = settings.resolved_keys()
    assert keys.index_key == b"i" * 32
    assert keys.data_keys == [("k1", b"d" * 32)]
    assert settings.secure_cookies


def test_production_refuses_http_issuer():
    _refused(production(issuer="http://idp.example.gov.cn"), "YIWANG_ISSUER")


def test_production_refuses_loopback_http_issuer():
    # The development exception for http://127.0.0.1 does not exist in production.
    _refused(production(issuer="http://127.0.0.1:5000"), "YIWANG_ISSUER")


@pytest.mark.parametrize("secret", [None, "short", "x" * 31])
def test_production_refuses_missing_or_short_secret(secret):
    _refused(production(secret_key=secret), "YIWANG_SECRET_KEY")


@pytest.mark.parametrize("key", [None, base64.urlsafe_b64encode(b"k" * 16).decode()])
def test_production_refuses_missing_or_short_index_key(key):
    _refused(production(index_key=key), "YIWANG_INDEX_KEY")


@pytest.mark.parametrize("keys", [None, "nokeyid", "k1:" + base64.urlsafe_b64encode(b"d" * 16).decode()])
def test_production_refuses_missing_or_bad_data_keys(keys):
    _refused(production(data_keys=keys), "YIWANG_DATA_KEYS")


def test_production_never_generates_keys():
    # Development generates keys into the instance folder; production must not.
    with pytest.raises(ConfigurationError):
        production(secret_key=None).resolved_keys()


def test_production_refuses_in_process_store_with_several_workers():
    _refused(production(redis_url=None), "YIWANG_REDIS_URL")


def test_production_one_worker_without_redis_is_allowed():
    production(redis_url=None, workers=1).check_production()


def test_production_refuses_sqlite_default():
    _refused(production(database_url=None), "YIWANG_DATABASE_URL")


def test_production_refuses_demo():
    _refused(production(demo=True), "YIWANG_DEMO")


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigurationError) as info:
        production(issuer="http://x.example", secret_key=None, demo=True).check_production()
    message = str(info.value)
    assert "YIWANG_ISSUER" in message and "YIWANG_SECRET_KEY" in message and "YIWANG_DEMO" in message


def test_development_refuses_several_workers_without_redis(tmp_path):
    settings = Settings(env="development", workers=2, instance_path=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="YIWANG_REDIS_URL"):
        settings.check_production()
    Settings(env="development", workers=2, redis_url="redis://127.0.0.1:6379/0",  # type: ignore[call-arg]
             instance_path=tmp_path).check_production()


def test_create_app_refuses_unsafe_settings():
    from config.app import create_app

    with pytest.raises(ConfigurationError):
        create_app(production(issuer="http://idp.example.gov.cn"))


@pytest.mark.parametrize("issuer", [
    "https://idp.example.gov.cn?tenant=1",
    "https://idp.example.gov.cn#frag",
    "https://idp.example.gov.cn/?",
    "https://idp.example.gov.cn/#",
    "idp.example.gov.cn",
    "ftp://idp.example.gov.cn",
    "https://",
])
def test_issuer_shape_is_refused(issuer):
    # OIDC Discovery §3 / RFC 8414 §2: a URL using https, with no query or fragment.
    with pytest.raises(ValidationError):
        Settings(issuer=issuer)  # type: ignore[call-arg]


def test_issuer_trailing_slash_is_dropped():
    # Endpoint URLs are issuer + path; a trailing slash would double it.
    assert Settings(issuer="https://idp.example.gov.cn/sso/").issuer == "https://idp.example.gov.cn/sso"  # type: ignore[call-arg]


def test_cookies_secure_except_loopback_http_development(tmp_path):
    dev = Settings(instance_path=tmp_path)  # type: ignore[call-arg]
    assert dev.issuer_is_loopback_http and not dev.secure_cookies
    assert Settings(issuer="https://idp.example.test", instance_path=tmp_path).secure_cookies  # type: ignore[call-arg]
    assert Settings(issuer="http://idp.lan", instance_path=tmp_path).secure_cookies  # type: ignore[call-arg]


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("YIWANG_ISSUER", "https://from-env.example.test")
    monkeypatch.setenv("YIWANG_WORKERS", "3")
    settings = Settings()  # type: ignore[call-arg]
    assert settings.issuer == "https://from-env.example.test"
    assert settings.workers == 3


def test_settings_are_frozen():
    settings = Settings()  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        settings.issuer = "https://changed.example.test"  # type: ignore[misc]


def test_development_keys_are_generated_once(tmp_path):
    first = Settings(instance_path=tmp_path).resolved_keys()  # type: ignore[call-arg]
    second = Settings(instance_path=tmp_path).resolved_keys()  # type: ignore[call-arg]
    assert first.secret_key == second.secret_key and first.index_key == second.index_key
    assert first.data_keys == second.data_keys
    assert len(first.index_key) >= 32


def test_production_refuses_development_registry_and_sms():
    # Issue 3: a development-only adapter is refused unless declared authoritative.
    _refused(production(registry_adapter="local"), "YIWANG_REGISTRY_LOCAL_AUTHORITATIVE")
    production(registry_adapter="local", registry_local_authoritative=True).check_production()
    _refused(production(registry_url="http://registry.example.gov.cn/verify"), "YIWANG_REGISTRY_URL")
    _refused(production(registry_key=None), "YIWANG_REGISTRY_KEY")
    _refused(production(sms_sender="console"), "console SMS sender")
    _refused(production(sms_url=None), "YIWANG_SMS_URL")


def test_metrics_networks_default_to_loopback_and_are_parsed():
    import ipaddress

    assert Settings().metrics_networks == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))  # type: ignore[call-arg]
    custom = Settings(metrics_allowed_networks=" 10.0.0.0/8, 192.0.2.10 ,")  # type: ignore[call-arg]
    assert custom.metrics_networks == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.10/32"))
    assert Settings(metrics_allowed_networks="").metrics_networks == ()  # type: ignore[call-arg]


@pytest.mark.parametrize("networks", ["10.0.0.0/33", "localhost", "10.0.0.0/8;192.0.2.1"])
def test_metrics_networks_that_do_not_parse_are_refused(networks):
    with pytest.raises(ValidationError):
        Settings(metrics_allowed_networks=networks)  # type: ignore[call-arg]


def test_production_refuses_a_short_metrics_token():
    _refused(production(metrics_token="short"), "YIWANG_METRICS_TOKEN")
    production(metrics_token="t" * 32).check_production()
