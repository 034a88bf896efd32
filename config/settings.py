"""One typed, frozen settings object, read once from ``YIWANG_*`` environment variables.

The app never reads the environment itself: ``create_app(settings)`` takes this object, so
tests build settings directly. Production refuses unsafe values (``check_production``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from admin.audit import AlertThresholds
from certificates.settings import CertificateSettings
from idp.protocol import Features
from idp.settings import IdpSettings
from realname.settings import RealnameSettings

_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


class ConfigurationError(Exception):
    """The configuration is unsafe or inconsistent; the process must not start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YIWANG_", frozen=True, extra="ignore")

    env: Literal["development", "production"] = Field(
        "development",
        description="`development` allows http on loopback and generated keys; "
        "`production` enforces every guard listed under Production.",
    )
    issuer: str = Field(
        "http://127.0.0.1:5000",
        description="Issuer identifier (OIDC Discovery §3, RFC 8414 §2): the external https "
        "URL of the service, no query or fragment, no trailing slash. Every endpoint URL is "
        "derived from it.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs browser cookies (CSRF, UI state). At least 32 characters in "
        "production. Development generates one into the instance folder.",
    )
    index_key: SecretStr | None = Field(
        None,
        description="HMAC-SHA-256 key (base64, 32+ bytes) for keyed hashes: client secrets, "
        "refresh tokens, blind indexes. Changing it invalidates those hashes. Development "
        "generates one into the instance folder.",
    )
    data_keys: SecretStr | None = Field(
        None,
        description="AES-256-GCM keys for data at rest, `id:base64key,id2:base64key`; the "
        "first is used to encrypt, all decrypt (rotation). Development generates one.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the durable database, e.g. "
        "`postgresql+psycopg://user@host/yiwang`. Unset: a SQLite file in the instance folder.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL for ephemeral shared state, e.g. `redis://127.0.0.1:6379/0`. "
        "Unset: an in-process store (one process only).",
    )
    redis_prefix: str = Field("yiwang:", description="Prefix of every Redis key this service writes.")
    workers: int = Field(
        1, ge=1, description="Number of gunicorn workers; more than one needs Redis."
    )
    instance_path: Path = Field(
        Path("instance"), description="Folder for the SQLite file and generated development keys."
    )
    log_level: str = Field("INFO", description="Python log level of the JSON logs.")
    trusted_proxies: int = Field(
        0,
        ge=0,
        description="Number of reverse proxies in front of the service whose "
        "X-Forwarded-For/-Proto headers are trusted (werkzeug ProxyFix).",
    )
    demo: bool = Field(
        False, description="Create a demo client and a demo user at start-up (development only)."
    )
    metrics_allowed_networks: str = Field(
        "127.0.0.0/8,::1/128",
        description="Comma-separated client networks (CIDR or single addresses) that may read `/metrics` "
        "without a token. The client address is the one ProxyFix derives (the forwarded address behind "
        "`YIWANG_TRUSTED_PROXIES` proxies). Empty: only with `YIWANG_METRICS_TOKEN`.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token (RFC 6750 §2.1 `Authorization: Bearer ...`) that lets a scraper read "
        "`/metrics` from any address; at least 32 characters in production. Unset: networks only.",
    )

    # Protocol lifetimes live in the identity provider's section.
    code_ttl: int = Field(60, ge=5, le=60, description="Authorization code lifetime, seconds (RFC 9700 §4.2.1: short).")
    access_token_ttl: int = Field(300, ge=30, le=3600, description="Access token lifetime, seconds (RFC 9068 JWTs).")
    id_token_ttl: int = Field(300, ge=30, le=3600, description="ID token lifetime, seconds.")
    refresh_token_ttl: int = Field(
        86400 * 30, ge=300, description="Absolute lifetime of a refresh token family, seconds."
    )
    refresh_token_idle_ttl: int = Field(
        86400 * 7, ge=300, description="A refresh token unused this long expires, seconds."
    )
    session_idle_ttl: int = Field(1800, ge=60, description="SSO session idle timeout, seconds.")
    session_max_ttl: int = Field(43200, ge=300, description="SSO session absolute timeout, seconds.")
    signing_alg: Literal["ES256", "RS256"] = Field(
        "ES256", description="Default ID token signing algorithm; RS256 keys are always published too."
    )
    key_rotation_days: int = Field(
        90, ge=1, description="Age after which `keys rotate --if-due` promotes the next key."
    )
    create_keys_on_start: bool = Field(
        True, description="At start, create the signing keys when the database has none (one instance does it "
                          "while the others wait); `keys ensure` does the same by hand."
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed passwords per account within the lockout window before a temporary lockout."
    )
    login_lockout_seconds: int = Field(900, ge=60, description="Temporary lockout length and failure window, seconds.")
    ip_max_failures_per_hour: int = Field(
        50, ge=1, description="Failed logins per client IP per hour before that IP is throttled."
    )
    consent_ttl_days: int = Field(365, ge=1, description="Remembered consent expires after this many days.")
    mfa_max_failures: int = Field(
        5, ge=1, description="Wrong one-time codes (TOTP, recovery, SMS) per account within the MFA lockout window "
        "before second-factor checks of that account are refused for the window (issue 17; a correct password "
        "does not reset the count).",
    )
    mfa_lockout_seconds: int = Field(
        900, ge=60, description="Second-factor failure window and lockout length, seconds."
    )
    interaction_max_per_ip_hour: int = Field(
        600, ge=10, description="New pending authorization requests (login/consent interactions kept in the "
        "shared store) per client IP per hour (issue 17: bounds the store's memory; generous for carrier-grade "
        "NAT).",
    )
    client_assertion_max_lifetime: int = Field(
        3600, ge=60, le=86400, description="The longest a private_key_jwt client assertion may be valid, seconds "
        "(RFC 7523 §3: exp - iat, and exp no further from now; issue 17). One hour is what Authlib's client "
        "signs for; clients such as openid-client sign for 60 s.",
    )
    admin_max_auth_age: int = Field(
        900, ge=60, le=3600, description="The admin API accepts an administrator's token only if the login behind "
        "it is at most this many seconds old (RFC 9470 max_age); an authorization request for the admin scope "
        "forces a new login past it (issue 17).",
    )
    backchannel_logout_timeout: float = Field(
        2.0, gt=0, description="Timeout of one back-channel logout POST, seconds."
    )

    # Certificate login (issue 4).
    client_cert_header: str | None = Field(
        None,
        description="mTLS mode: the request header in which a TLS-terminating proxy passes the verified client "
        "certificate (URL-escaped PEM, e.g. nginx `$ssl_client_escaped_cert`). Unset: mTLS mode is off.",
    )
    client_cert_proxies: str = Field(
        "",
        description="Comma-separated IP addresses of the proxies allowed to set the client-certificate header; "
        "the header from any other peer is ignored.",
    )
    certificate_challenge_ttl: int = Field(
        300, ge=30, le=3600,
        description="Seconds a certificate-login challenge stays usable (single use, for the browser it was shown to).",
    )
    # Optional protocol features (issue 11): each switches its endpoint, its discovery
    # metadata and its server registration together.
    feature_introspection: bool = Field(True, description="Token introspection (RFC 7662) at /introspect.")
    feature_revocation: bool = Field(True, description="Token revocation (RFC 7009) at /revoke.")
    feature_client_credentials: bool = Field(
        True, description="The client_credentials grant (RFC 6749 §4.4) for machine-to-machine tokens.")
    feature_frontchannel_logout: bool = Field(
        True, description="OpenID Connect Front-Channel Logout 1.0 (iframes on the logout page).")
    feature_backchannel_logout: bool = Field(
        True, description="OpenID Connect Back-Channel Logout 1.0 (logout tokens POSTed to portals).")

    # Real-name verification (issue 3).
    registry_adapter: Literal["local", "http"] = Field(
        "local",
        description="Where names and ID numbers are verified: `local` (the realname_registry table, loaded "
        "with `flask realname import-registry`) or `http` (a JSON verification service).",
    )
    registry_local_authoritative: bool = Field(
        False,
        description="Production refuses the `local` registry unless this says the local table IS the "
        "authoritative registry (an offline deployment that loads official extracts).",
    )
    registry_url: str | None = Field(None, description="URL of the http registry service (https in production).")
    registry_key_id: str = Field("yiwang", description="Key id sent to the http registry (X-Yiwang-Key-Id).")
    registry_key: SecretStr | None = Field(
        None, description="Shared HMAC-SHA-256 key (base64) signing requests to the http registry."
    )
    registry_timeout: float = Field(3.0, gt=0, le=30, description="Timeout of one registry call, seconds.")
    registry_retries: int = Field(1, ge=0, le=3, description="Retries after a failed registry call.")
    registry_ca_file: str | None = Field(None, description="CA bundle for the registry's TLS certificate.")
    registry_client_cert: str | None = Field(None, description="Client certificate (PEM) for mutual TLS to the registry.")
    registry_client_key: str | None = Field(None, description="Private key (PEM) of the registry client certificate.")
    sms_sender: Literal["console", "http"] = Field(
        "console", description="`console` writes SMS codes to the log (development only); `http` posts to a gateway."
    )
    sms_url: str | None = Field(None, description="URL of the SMS gateway for the `http` sender.")
    sms_key: SecretStr | None = Field(None, description="Shared HMAC-SHA-256 key (base64) signing SMS gateway requests.")
    verify_max_per_account_hour: int = Field(
        5, ge=1, description="Registry verifications per account (or registration attempt) per hour."
    )
    verify_max_per_ip_hour: int = Field(30, ge=1, description="Registry verifications per client IP per hour.")
    register_max_per_ip_hour: int = Field(
        100, ge=1, description="Registration form submissions per client IP per hour, counted before anything else "
        "is checked (OWASP ASVS 5 §2.4). Generous because carrier-grade NAT puts many citizens behind one address.",
    )
    sms_max_per_phone_day: int = Field(
        10, ge=1, description="SMS codes sent to one phone number per day, across every purpose (registration, "
        "second factor, phone verification) and attempt; besides, one a minute per number.",
    )
    sms_max_per_ip_hour: int = Field(
        50, ge=1, description="SMS codes requested from one client IP per hour (keyed hash of the IP); raise it "
        "behind large carrier-grade NAT pools.",
    )

    # Audit trail retention and alerts (issue 6).
    audit_retention_days: int = Field(
        0,
        ge=0,
        description="Audit events older than this many days may be pruned by `flask audit prune` (whole chain "
        "prefixes up to a signed checkpoint, which stays as the chain's verifiable anchor; PIPL Art. 19). "
        "0 keeps the trail forever.",
    )
    alert_login_failures_window: int = Field(
        900, ge=60, description="Window of the failed-login burst alerts (per account, per client IP), seconds."
    )
    alert_login_failures_per_account: int = Field(
        10, ge=1, description="Failed password or second-factor logins of one account within the window that raise an alert."
    )
    alert_login_failures_per_ip: int = Field(
        30, ge=1, description="Failed logins from one client IP (keyed hash) within the window that raise an alert."
    )
    alert_verifications_window: int = Field(
        3600, ge=60, description="Window of the verification-volume alert, seconds."
    )
    alert_verifications_per_client: int = Field(
        1000, ge=1, description="Registry verification calls per client within the window that raise an alert."
    )
    alert_certificate_revoked_window: int = Field(
        86400, ge=60, description="Window of the alert on certificate logins rejected for revocation, seconds."
    )
    alert_certificate_revoked_min: int = Field(
        1, ge=1, description="Certificate logins rejected for revocation (per CA) within the window that raise an alert."
    )
    alert_logout_failures_window: int = Field(
        86400, ge=60, description="Window of the failing back-channel logout delivery alert, seconds."
    )
    alert_logout_failures_min: int = Field(
        1, ge=1, description="Failed or retrying back-channel logout deliveries per client within the window that "
        "raise an alert.",
    )
    alert_metrics_cache_seconds: int = Field(
        30, ge=0, description="How long one process reuses the alert counts it computed for `/metrics`, seconds "
        "(bounds the database work of frequent scrapes).",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer_shape(cls, value: str) -> str:
        # OIDC Discovery §3 / RFC 8414 §2: scheme + host (+ path), no query or fragment.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("issuer must be an absolute http(s) URL")
        # An empty "?" or "#" is still a query or fragment component (RFC 3986 §3).
        if parts.query or parts.fragment or "?" in value or "#" in value:
            raise ValueError("issuer must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("metrics_allowed_networks")
    @classmethod
    def _metrics_networks_shape(cls, value: str) -> str:
        _networks(value)
        return value

    # -- derived values ---------------------------------------------------------------

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return _networks(self.metrics_allowed_networks)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def issuer_is_loopback_http(self) -> bool:
        parts = urlsplit(self.issuer)
        return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS

    @property
    def secure_cookies(self) -> bool:
        # Cookies are Secure everywhere except the http://localhost development case.
        return not (self.issuer_is_loopback_http and not self.is_production)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        path = self.instance_path.resolve() / "yiwang.sqlite3"
        return f"sqlite:///{path}"

    def check_production(self) -> None:
        """Raise ``ConfigurationError`` for any setting unsafe in production."""
        if not self.is_production:
            if self.workers > 1 and not self.redis_url:
                raise ConfigurationError(
                    "the in-process store cannot be shared by several workers: set YIWANG_REDIS_URL"
                )
            return
        problems = []
        if urlsplit(self.issuer).scheme != "https":
            problems.append("YIWANG_ISSUER must be an https URL")
        if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
            problems.append("YIWANG_SECRET_KEY must be set to at least 32 characters")
        if self.index_key is None or len(_b64(self.index_key.get_secret_value())) < 32:
            problems.append("YIWANG_INDEX_KEY must be set to a base64 key of at least 32 bytes")
        if self.data_keys is None:
            problems.append("YIWANG_DATA_KEYS must be set")
        else:
            try:
                _parse_data_keys(self.data_keys.get_secret_value())
            except ValueError as exc:
                problems.append(f"YIWANG_DATA_KEYS: {exc}")
        if not self.redis_url and self.workers > 1:
            problems.append("the in-process store cannot be shared by several workers: set YIWANG_REDIS_URL")
        if not self.database_url:
            problems.append("YIWANG_DATABASE_URL must be set (PostgreSQL) in production")
        if self.demo:
            problems.append("YIWANG_DEMO is development only")
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 32:
            problems.append("YIWANG_METRICS_TOKEN must have at least 32 characters")
        if self.registry_adapter == "local" and not self.registry_local_authoritative:
            problems.append(
                "the local registry is for development; set YIWANG_REGISTRY_ADAPTER=http or declare the local "
                "table authoritative with YIWANG_REGISTRY_LOCAL_AUTHORITATIVE=true"
            )
        if self.registry_adapter == "http" and not (
            self.registry_url and self.registry_url.startswith("https://") and self.registry_key
        ):
            problems.append("the http registry needs an https YIWANG_REGISTRY_URL and YIWANG_REGISTRY_KEY")
        if self.sms_sender == "console":
            problems.append("the console SMS sender is development only: set YIWANG_SMS_SENDER=http")
        elif not (self.sms_url and self.sms_url.startswith("https://") and self.sms_key):
            problems.append("the http SMS sender needs an https YIWANG_SMS_URL and YIWANG_SMS_KEY")
        if problems:
            raise ConfigurationError("; ".join(problems))

    def idp_settings(self) -> IdpSettings:
        return IdpSettings(
            issuer=self.issuer,
            code_ttl=self.code_ttl,
            access_token_ttl=self.access_token_ttl,
            id_token_ttl=self.id_token_ttl,
            refresh_token_ttl=self.refresh_token_ttl,
            refresh_token_idle_ttl=self.refresh_token_idle_ttl,
            session_idle_ttl=self.session_idle_ttl,
            session_max_ttl=self.session_max_ttl,
            signing_alg=self.signing_alg,
            key_rotation_days=self.key_rotation_days,
            login_max_failures=self.login_max_failures,
            login_lockout_seconds=self.login_lockout_seconds,
            ip_max_failures_per_hour=self.ip_max_failures_per_hour,
            mfa_max_failures=self.mfa_max_failures,
            mfa_lockout_seconds=self.mfa_lockout_seconds,
            interaction_max_per_ip_hour=self.interaction_max_per_ip_hour,
            admin_max_auth_age=self.admin_max_auth_age,
            client_assertion_max_lifetime=self.client_assertion_max_lifetime,
            consent_ttl_days=self.consent_ttl_days,
            secure_cookies=self.secure_cookies,
            backchannel_logout_timeout=self.backchannel_logout_timeout,
            production=self.is_production,
            features=Features(
                introspection=self.feature_introspection, revocation=self.feature_revocation,
                client_credentials=self.feature_client_credentials,
                frontchannel_logout=self.feature_frontchannel_logout,
                backchannel_logout=self.feature_backchannel_logout,
            ),
        )

    def certificate_settings(self) -> CertificateSettings:
        return CertificateSettings(
            client_cert_header=self.client_cert_header,
            client_cert_proxies=tuple(p.strip() for p in self.client_cert_proxies.split(",") if p.strip()),
            challenge_ttl=self.certificate_challenge_ttl,
            production=self.is_production,
        )

    def realname_settings(self) -> RealnameSettings:
        return RealnameSettings(
            registry_adapter=self.registry_adapter,
            registry_url=self.registry_url,
            registry_key_id=self.registry_key_id,
            registry_key=_b64(self.registry_key.get_secret_value()) if self.registry_key else b"",
            registry_timeout=self.registry_timeout,
            registry_retries=self.registry_retries,
            registry_ca_file=self.registry_ca_file,
            registry_client_cert=self.registry_client_cert,
            registry_client_key=self.registry_client_key,
            sms_sender=self.sms_sender,
            sms_url=self.sms_url,
            sms_key=_b64(self.sms_key.get_secret_value()) if self.sms_key else b"",
            verify_max_per_account_hour=self.verify_max_per_account_hour,
            verify_max_per_ip_hour=self.verify_max_per_ip_hour,
            register_max_per_ip_hour=self.register_max_per_ip_hour,
            sms_max_per_phone_day=self.sms_max_per_phone_day,
            sms_max_per_ip_hour=self.sms_max_per_ip_hour,
        )

    def alert_thresholds(self) -> AlertThresholds:
        return AlertThresholds(
            login_failures_window=self.alert_login_failures_window,
            login_failures_per_account=self.alert_login_failures_per_account,
            login_failures_per_ip=self.alert_login_failures_per_ip,
            verifications_window=self.alert_verifications_window,
            verifications_per_client=self.alert_verifications_per_client,
            certificate_revoked_window=self.alert_certificate_revoked_window,
            certificate_revoked_min=self.alert_certificate_revoked_min,
            logout_failures_window=self.alert_logout_failures_window,
            logout_failures_min=self.alert_logout_failures_min,
        )

    def resolved_keys(self) -> ResolvedKeys:
        """Secrets from configuration, or (development only) generated once into the
        instance folder so restarts keep sessions, hashes and encrypted data valid."""
        if self.is_production:
            if not (self.secret_key and self.index_key and self.data_keys):
                raise ConfigurationError("production keys are missing")
            return ResolvedKeys(
                secret_key=self.secret_key.get_secret_value(),
                index_key=_b64(self.index_key.get_secret_value()),
                data_keys=_parse_data_keys(self.data_keys.get_secret_value()),
            )
        return ResolvedKeys(
            secret_key=(
                self.secret_key.get_secret_value()
                if self.secret_key
                else _dev_secret(self.instance_path, "secret_key")
            ),
            index_key=(
                _b64(self.index_key.get_secret_value())
                if self.index_key
                else hashlib.sha256(_dev_secret(self.instance_path, "index_key").encode()).digest()
            ),
            data_keys=(
                _parse_data_keys(self.data_keys.get_secret_value())
                if self.data_keys
                else [("dev1", hashlib.sha256(_dev_secret(self.instance_path, "data_key").encode()).digest())]
            ),
        )


class ResolvedKeys:
    def __init__(self, secret_key: str, index_key: bytes, data_keys: list[tuple[str, bytes]]) -> None:
        self.secret_key = secret_key
        self.index_key = index_key
        self.data_keys = data_keys


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise ValueError(f"not a network: {exc}") from None


def _b64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ConfigurationError("a key is not valid base64") from exc


def _parse_data_keys(text: str) -> list[tuple[str, bytes]]:
    keys = []
    for item in text.split(","):
        kid, sep, value = item.strip().partition(":")
        if not sep or not kid:
            raise ValueError("expected id:base64key entries separated by commas")
        key = _b64(value)
        if len(key) != 32:
            raise ValueError(f"key {kid!r} must decode to 32 bytes")
        keys.append((kid, key))
    if not keys:
        raise ValueError("at least one key is needed")
    return keys


def _dev_secret(folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"dev-{name}"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting together agree on one value.
        try:
            with open(path, "x") as fh:
                fh.write(value)
            path.chmod(0o600)
        except FileExistsError:
            return path.read_text().strip()
        return value
