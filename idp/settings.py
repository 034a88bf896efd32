"""The identity provider's section of the configuration (built by config.Settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import Features


@dataclass(frozen=True)
class IdpSettings:
    issuer: str
    code_ttl: int = 60
    access_token_ttl: int = 300
    id_token_ttl: int = 300
    refresh_token_ttl: int = 86400 * 30
    refresh_token_idle_ttl: int = 86400 * 7
    session_idle_ttl: int = 1800
    session_max_ttl: int = 43200
    signing_alg: str = "ES256"
    key_rotation_days: int = 90
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    ip_max_failures_per_hour: int = 50
    mfa_max_failures: int = 5
    mfa_lockout_seconds: int = 900
    interaction_max_per_ip_hour: int = 600
    admin_max_auth_age: int = 900
    client_assertion_max_lifetime: int = 3600
    consent_ttl_days: int = 365
    secure_cookies: bool = True
    backchannel_logout_timeout: float = 2.0
    production: bool = False
    features: Features = field(default_factory=Features)
