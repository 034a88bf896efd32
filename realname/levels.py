"""Assurance levels from identity proofing and this login's factors (DESIGN.md §5).
Pure.

- cn-l0: an account, self-asserted data only;
- cn-l1: name + ID number matched in the authoritative registry;
- cn-l2: cn-l1 and, in this login, a possession factor bound to the person: a TOTP
  authenticator enrolled by the verified account (amr ``otp``) or an SMS code to a phone
  the registry/carrier confirmed as the person's (三要素, amr ``sms``);
- cn-l3: cn-l2 and a face match against the authoritative portrait (amr ``face``, from
  an external service);
- cn-l4: a qualified certificate (UKey, amr ``hwk``) — set by certificate login.
"""

from __future__ import annotations


def session_level(*, proofing_level: str | None, amr: set[str], phone_bound: bool) -> str:
    if "hwk" in amr:
        return "cn-l4"
    if proofing_level is None:
        return "cn-l0"
    possession = "otp" in amr or ("sms" in amr and phone_bound)
    if not possession:
        return "cn-l1"
    if "face" in amr and proofing_level == "cn-l3":
        return "cn-l3"
    return "cn-l2"


def account_level(*, proofing_level: str | None, has_totp: bool, phone_bound: bool) -> str:
    """The highest level this account can reach in a login, shown on the account page."""
    if proofing_level is None:
        return "cn-l0"
    if proofing_level == "cn-l3" and (has_totp or phone_bound):
        return "cn-l3"
    return "cn-l2" if has_totp or phone_bound else "cn-l1"
