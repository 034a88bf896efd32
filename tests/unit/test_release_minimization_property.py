"""Minimization properties of the release rules (issue 5, idp/release.py): for random
client policies, requests, remembered consents and consent-page choices, a grant
releases only requested ∩ policy ∩ (consent ∪ statutory); sensitive claims only when
confirmed in the same authorization, and never on refresh."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto import KeyedHasher
from idp.catalogue import CATALOGUE, Sensitivity
from idp.claims import SCOPE_CLAIMS
from idp.clients import RegisteredClient
from idp.release import (
    ConsentState,
    choices,
    decide_consent,
    for_token,
    is_sensitive,
    refreshable,
    released,
    requested_claims,
)

CLAIMS = sorted(n for scope in SCOPE_CLAIMS.values() for n in scope)
SCOPES = sorted(SCOPE_CLAIMS)
claim_sets = st.sets(st.sampled_from(CLAIMS))
policy_entries = st.fixed_dictionaries(
    {"purpose": st.just("p"), "basis": st.sampled_from(["consent", "statutory"]), "required": st.booleans()}
)


def _client(policy: dict[str, dict[str, object]], sensitive_allowed: bool) -> RegisteredClient:
    return RegisteredClient(
        client_id="c", name="c", secret_hash=None, redirect_uris=(), post_logout_redirect_uris=(),
        backchannel_logout_uri=None, frontchannel_logout_uri=None, grant_types=(), scopes=tuple(SCOPES),
        token_endpoint_auth_method="none", subject_type="pairwise", sector_identifier="s", jwks=None,
        id_token_signed_response_alg=None, hasher=KeyedHasher(b"k" * 32), claim_policy=policy,
        sensitive_claims_allowed=sensitive_allowed,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    policy = draw(st.dictionaries(st.sampled_from(CLAIMS), policy_entries, max_size=len(CLAIMS)))
    for name, spec in policy.items():
        if CATALOGUE[name].sensitivity is Sensitivity.SENSITIVE:
            spec["required"] = False  # validate_claim_policy refuses required sensitive claims
    claims_request = {"userinfo": dict.fromkeys(draw(claim_sets)), "id_token": dict.fromkeys(draw(claim_sets))}
    return {
        "policy": policy,
        "sensitive_allowed": draw(st.booleans()),
        "scope": " ".join(["openid", *draw(st.sets(st.sampled_from(SCOPES)))]),
        "claims_request": draw(st.one_of(st.none(), st.just(claims_request))),
        "agreed": draw(claim_sets),
        "declined": draw(claim_sets),
        "ticked": draw(claim_sets),
        "confirm": draw(st.booleans()),
    }


@given(scenarios())
@settings(max_examples=400)
def test_released_within_request_policy_and_consent(s: dict) -> None:
    client = _client(s["policy"], s["sensitive_allowed"])
    requested = requested_claims(client, s["scope"], s["claims_request"])
    before = ConsentState(frozenset(s["agreed"]), frozenset(s["declined"] - s["agreed"]))
    offer = choices(client, requested, before)
    agreed, declined, confirmed = decide_consent(offer, s["ticked"], s["confirm"])
    # What ConsentService.grant remembers: later decisions win, sensitive never kept.
    after = ConsentState(
        frozenset(((before.agreed - declined) | agreed) - {n for n in agreed if is_sensitive(n)}),
        frozenset((before.declined - agreed) | declined),
    )
    granted = released(client, requested, after, confirmed)

    policy = set(s["policy"]) if s["policy"] else set(CLAIMS)
    statutory = {n for n, spec in s["policy"].items() if spec["basis"] == "statutory"}
    assert granted <= requested
    assert granted <= policy
    assert granted <= after.agreed | statutory | confirmed
    # Unticked optional claims are not released.
    assert not granted & (set(offer.optional) - s["ticked"])
    # Sensitive: only with the administrator's flag, a policy entry and this confirmation.
    for name in {n for n in granted if is_sensitive(n)}:
        assert s["sensitive_allowed"] and name in s["policy"] and s["confirm"]
    assert not {n for n in refreshable(granted) if is_sensitive(n)}
    # Every token of the grant: within the grant, whatever (narrower) scope it has.
    assert for_token(granted, client, s["scope"], s["claims_request"]) <= granted
    assert for_token(granted, client, "openid", None) == set()


@given(scenarios())
@settings(max_examples=200)
def test_nothing_pending_once_decided(s: dict) -> None:
    # After the citizen answered, the same request asks nothing again but sensitive claims.
    client = _client(s["policy"], s["sensitive_allowed"])
    requested = requested_claims(client, s["scope"], s["claims_request"])
    offer = choices(client, requested, ConsentState())
    agreed, declined, _ = decide_consent(offer, s["ticked"], s["confirm"])
    again = choices(client, requested, ConsentState(frozenset(agreed - {n for n in agreed if is_sensitive(n)}),
                                                     frozenset(declined)))
    assert not (again.required or again.optional or again.statutory)
    assert set(again.sensitive) == {n for n in requested if is_sensitive(n)}
