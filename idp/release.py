"""Which claims a grant may release (issue 5, DESIGN.md §5; PIPL Art. 6 minimisation,
Art. 14 consent, Art. 29 separate consent for sensitive information). Pure: no Flask, no
database.

Three sets meet here:
- requested: what the scopes and the ``claims`` parameter ask for (OIDC Core §5.4, §5.5);
- policy: what the client is registered to receive, each with a purpose and legal basis;
- consent: what the citizen agreed to for this client (remembered, per claim), plus what
  a statutory duty releases without consent (PIPL Art. 13(3)) once the citizen was told.

A grant releases requested ∩ policy ∩ (consent ∪ statutory). Sensitive claims are never
remembered: they need the citizen's separate confirmation in the same authorization
(``confirmed_now``) and are not carried to refreshed tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .catalogue import CATALOGUE, Sensitivity
from .claims import id_token_claim_names, userinfo_claim_names

if TYPE_CHECKING:
    from .clients import RegisteredClient


@dataclass(frozen=True)
class ConsentState:
    """The citizen's remembered decisions for one client (empty when none is live)."""

    agreed: frozenset[str] = field(default_factory=frozenset)
    declined: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ConsentChoices:
    """What the consent page asks about, split the way the page shows it."""

    required: tuple[str, ...]  # released if the citizen allows at all (policy marks them necessary)
    statutory: tuple[str, ...]  # released by statutory duty; shown so the citizen is told
    optional: tuple[str, ...]  # can be unticked
    sensitive: tuple[str, ...]  # shown apart, with their own confirmation, every time
    already: tuple[str, ...]  # agreed before; not asked again

    @property
    def pending(self) -> bool:
        return bool(self.required or self.statutory or self.optional or self.sensitive)


def is_sensitive(name: str) -> bool:
    claim = CATALOGUE.get(name)
    return claim is not None and claim.sensitivity is Sensitivity.SENSITIVE


def asked_claims(scope: str, claims_request: dict[str, Any] | None) -> set[str]:
    """What the scopes and the ``claims`` parameter ask for, before any policy."""
    return userinfo_claim_names(scope, claims_request) | id_token_claim_names(scope, claims_request)


def requested_claims(client: RegisteredClient, scope: str, claims_request: dict[str, Any] | None) -> set[str]:
    """What this request asks for that the client's policy allows (never ``sub``, which is
    always released: OIDC Core §5.3.2). Requests beyond the policy are dropped silently."""
    return {n for n in client.allowed_claims(asked_claims(scope, claims_request)) if n != "sub"}


def _statutory(client: RegisteredClient, name: str) -> bool:
    return bool(client.claim_policy.get(name, {}).get("basis") == "statutory")


def _required(client: RegisteredClient, name: str) -> bool:
    return bool(client.claim_policy.get(name, {}).get("required"))


def choices(client: RegisteredClient, requested: set[str], state: ConsentState) -> ConsentChoices:
    """What the citizen must decide now. Claims decided before (agreed or declined) are not
    asked again, except sensitive ones, which are asked at every release."""
    sensitive = sorted(n for n in requested if is_sensitive(n))
    new = sorted(n for n in requested - state.agreed - state.declined if not is_sensitive(n))
    return ConsentChoices(
        required=tuple(n for n in new if _required(client, n) and not _statutory(client, n)),
        statutory=tuple(n for n in new if _statutory(client, n)),
        optional=tuple(n for n in new if not _required(client, n) and not _statutory(client, n)),
        sensitive=tuple(sensitive),
        already=tuple(sorted(n for n in requested & state.agreed if not is_sensitive(n))),
    )


def decide_consent(offer: ConsentChoices, ticked: set[str], sensitive_confirmed: bool) -> tuple[set[str], set[str], set[str]]:
    """The citizen allowed the request: returns (agreed to remember, declined to remember,
    sensitive claims confirmed for this release only). Unticked optional claims are
    declined; anything ticked that was not offered is ignored."""
    agreed = set(offer.required) | set(offer.statutory) | (set(offer.optional) & ticked)
    declined = set(offer.optional) - ticked
    confirmed = set(offer.sensitive) if sensitive_confirmed else set()
    return agreed, declined, confirmed


def released(
    client: RegisteredClient, requested: set[str], state: ConsentState, confirmed_now: set[str] | frozenset[str] = frozenset()
) -> set[str]:
    """The grant's claim set: requested ∩ policy ∩ (consent ∪ statutory), and sensitive
    claims only when confirmed in this authorization."""
    out = set()
    for name in requested:
        if is_sensitive(name):
            if name in confirmed_now:
                out.add(name)
        elif name in state.agreed or _statutory(client, name):
            out.add(name)
    return out


def for_token(granted: set[str] | frozenset[str], client: RegisteredClient, scope: str,
              claims_request: dict[str, Any] | None) -> set[str]:
    """The claims one token may release: the grant's set, narrowed to a (possibly narrowed,
    RFC 6749 §6) scope and to the client's current policy, which an administrator may have
    reduced since the grant."""
    return set(granted) & requested_claims(client, scope, claims_request)


def refreshable(granted: set[str] | frozenset[str]) -> set[str]:
    """What a refresh token carries on: never sensitive claims (consent at every release)."""
    return {n for n in granted if not is_sensitive(n)}
