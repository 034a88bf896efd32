"""Scope → claims for userinfo and the ``claims`` request parameter (OIDC Core §5.4,
§5.5). Pure. The privacy-minimizing release policy (per-client claims, purposes,
sensitivity) extends this catalogue in a later issue."""

from __future__ import annotations

import json
from typing import Any

from .catalogue import CATALOGUE

# Derived from the one catalogue (issue 5), so scopes and the consent page cannot drift.
# ``act`` is not requested: it comes with an agent's login (RFC 8693 §4.1).
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    scope: tuple(c.name for c in CATALOGUE.values() if scope in c.scopes and c.name != "act")
    for scope in sorted({s for c in CATALOGUE.values() for s in c.scopes})
}

# Claims an ID token may carry when asked for through ``claims.id_token`` (OIDC Core
# §5.5); everything else stays in userinfo (DESIGN.md §4: minimal ID token).
ID_TOKEN_REQUESTABLE = frozenset(c for claims in SCOPE_CLAIMS.values() for c in claims)


class InvalidClaimsRequestError(ValueError):
    pass


def parse_claims_request(raw: str | None) -> dict[str, Any] | None:
    """Parse and shape-check the ``claims`` parameter (OIDC Core §5.5)."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        # RecursionError: nested deeper than the parser's recursion limit.
        raise InvalidClaimsRequestError("not JSON") from None
    if not isinstance(value, dict):
        raise InvalidClaimsRequestError("not an object")
    for member in ("userinfo", "id_token"):
        part = value.get(member)
        if part is None:
            continue
        if not isinstance(part, dict):
            raise InvalidClaimsRequestError(f"{member} is not an object")
        for name, spec in part.items():
            if spec is not None and not isinstance(spec, dict):
                raise InvalidClaimsRequestError(f"{member}.{name} is not null or an object")
            if spec is not None:
                _check_claim_spec(name, spec)
    return value


def _check_claim_spec(name: str, spec: dict[str, Any]) -> None:
    # OIDC Core §5.5.1: "essential" is a boolean, "values" an array; acr values are
    # strings (§5.5.1.1), compared with the levels we know.
    if "essential" in spec and not isinstance(spec["essential"], bool):
        raise InvalidClaimsRequestError(f"{name}.essential is not a boolean")
    if "values" in spec and not isinstance(spec["values"], list):
        raise InvalidClaimsRequestError(f"{name}.values is not an array")
    if name == "acr":
        if "value" in spec and not isinstance(spec["value"], str):
            raise InvalidClaimsRequestError("acr.value is not a string")
        if not all(isinstance(v, str) for v in spec.get("values") or ()):
            raise InvalidClaimsRequestError("acr.values are not strings")


def requested_acr_values(acr_values: str | None, claims_request: dict[str, Any] | None) -> tuple[list[str], bool]:
    """Requested acr values and whether they are essential (OIDC Core §5.5.1.1)."""
    if claims_request:
        spec = (claims_request.get("id_token") or {}).get("acr")
        if isinstance(spec, dict):
            values = spec.get("values") or ([spec["value"]] if "value" in spec else [])
            values = [v for v in values if isinstance(v, str)]
            if values:
                return values, bool(spec.get("essential"))
    if acr_values:
        return acr_values.split(), True
    return [], False


def userinfo_claim_names(scope: str, claims_request: dict[str, Any] | None) -> set[str]:
    names: set[str] = set()
    scopes = scope.split()
    for s in scopes:
        names.update(SCOPE_CLAIMS.get(s, ()))
    if claims_request and isinstance(claims_request.get("userinfo"), dict):
        allowed = {c for s in scopes for c in SCOPE_CLAIMS.get(s, ())}
        names.update(n for n in claims_request["userinfo"] if n in allowed)
    return names


def id_token_claim_names(scope: str, claims_request: dict[str, Any] | None) -> set[str]:
    """Only what ``claims.id_token`` names and the granted scopes allow."""
    if not claims_request or not isinstance(claims_request.get("id_token"), dict):
        return set()
    allowed = {c for s in scope.split() for c in SCOPE_CLAIMS.get(s, ())}
    return {n for n in claims_request["id_token"] if n in allowed and n in ID_TOKEN_REQUESTABLE}
