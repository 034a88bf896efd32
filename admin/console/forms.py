"""Parsing of the console's client form into the fields of ``ClientAdminService``. Pure:
no Flask; the form arrives as a mapping with ``get`` and ``getlist`` (a MultiDict)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from idp.catalogue import CATALOGUE
from idp.clients import ClientService
from idp.protocol import AUTH_METHODS, GRANT_TYPES, SUPPORTED_SCOPES

MAX_URIS = 20
MAX_URI_LENGTH = 2000


class FormData(Protocol):
    def get(self, key: str) -> str | None: ...  # pragma: no cover - protocol

    def getlist(self, key: str) -> list[str]: ...  # pragma: no cover - protocol


@dataclass
class ClientForm:
    """The values to show back in the form and the fields for the service, or the
    errors (field name → fixed English message) when the input is malformed."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, Any]:
        return dict(self.values)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


def _choices(form: FormData, name: str, allowed: tuple[str, ...]) -> list[str]:
    return [v for v in allowed if v in form.getlist(name)]


def parse_client_form(form: FormData) -> ClientForm:
    """Read the client form. Only shape is checked here (sizes, JSON, known names); the
    rules of a registration are the service's (``idp.clients``), which reports them as
    ``InvalidClientMetadataError``."""
    out = ClientForm()
    v = out.values
    v["name"] = (form.get("name") or "").strip()[:200]
    for name in ("redirect_uris", "post_logout_redirect_uris"):
        uris = _lines(form.get(name) or "")
        if len(uris) > MAX_URIS or any(len(u) > MAX_URI_LENGTH for u in uris):
            out.errors[name] = f"At most {MAX_URIS} URIs of at most {MAX_URI_LENGTH} characters."
        v[name] = uris
    for name in ("backchannel_logout_uri", "sector_identifier_uri"):
        value = (form.get(name) or "").strip()
        if len(value) > MAX_URI_LENGTH:
            out.errors[name] = f"At most {MAX_URI_LENGTH} characters."
        v[name] = value or None
    v["grant_types"] = _choices(form, "grant_types", GRANT_TYPES)
    v["scopes"] = _choices(form, "scopes", SUPPORTED_SCOPES)
    method = form.get("token_endpoint_auth_method") or ""
    if method not in AUTH_METHODS:
        out.errors["token_endpoint_auth_method"] = "Choose a client authentication method."  # noqa: S105 - a message
    v["token_endpoint_auth_method"] = method
    subject_type = form.get("subject_type") or ""
    if subject_type not in ("pairwise", "public"):
        out.errors["subject_type"] = "Choose pairwise or public."
    v["subject_type"] = subject_type
    v["jwks"] = _jwks(form.get("jwks") or "", out)
    v["claim_policy"] = _claim_policy(form)
    v["sensitive_claims_allowed"] = form.get("sensitive_claims_allowed") == "yes"
    v["first_party"] = form.get("first_party") == "yes"
    return out


def _jwks(text: str, out: ClientForm) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        out.errors["jwks"] = "The key set is not valid JSON."
        return None
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or len(text) > 20000:
        out.errors["jwks"] = 'A JWK Set is a JSON object {"keys": [...]} (RFC 7517 §5).'
        return None
    return value


def _claim_policy(form: FormData) -> dict[str, dict[str, Any]]:
    """One row per catalogue claim: ticked ones form the policy (purpose, basis, required)."""
    policy: dict[str, dict[str, Any]] = {}
    for name in CATALOGUE:
        if form.get(f"claim.{name}") != "on":
            continue
        entry: dict[str, Any] = {
            "purpose": (form.get(f"claim.{name}.purpose") or "").strip()[:200],
            "basis": form.get(f"claim.{name}.basis") or "consent",
        }
        if form.get(f"claim.{name}.required") == "yes":
            entry["required"] = True
        policy[name] = entry
    return policy


def client_values(row: Any) -> dict[str, Any]:
    """A registration as form values (for the edit form)."""
    return {**ClientService.registration_of(row), "sector_identifier_uri": None}


NEW_CLIENT_DEFAULTS: dict[str, Any] = {
    "name": "", "redirect_uris": [], "post_logout_redirect_uris": [], "backchannel_logout_uri": None,
    "sector_identifier_uri": None, "grant_types": ["authorization_code", "refresh_token"],
    "scopes": ["openid", "profile"], "token_endpoint_auth_method": "client_secret_basic",
    "subject_type": "pairwise", "jwks": None, "claim_policy": {}, "sensitive_claims_allowed": False,
    "first_party": False,
}
