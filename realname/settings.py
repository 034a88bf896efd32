"""The real-name section of the configuration (built by config.Settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RealnameSettings:
    registry_adapter: str = "local"  # "local" | "http"
    registry_url: str | None = None
    registry_key_id: str = "yiwang"
    registry_key: bytes = b""
    registry_timeout: float = 3.0
    registry_retries: int = 1
    registry_ca_file: str | None = None
    registry_client_cert: str | None = None
    registry_client_key: str | None = None
    sms_sender: str = "console"  # "console" | "http"
    sms_url: str | None = None
    sms_key: bytes = b""
    verify_max_per_account_hour: int = 5
    verify_max_per_ip_hour: int = 30
    register_max_per_ip_hour: int = 100
    sms_max_per_phone_day: int = 10
    sms_max_per_ip_hour: int = 50
