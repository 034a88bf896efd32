"""The calling administrator (issue 6): who the API takes the caller for."""

from __future__ import annotations

from .bodies import Body
from .operations import Call, Reply, Route


class Me(Body):
    account_id: int
    roles: list[str]
    permissions: list[str]


def me(call: Call) -> Reply:
    actor = call.actor
    if actor.account_id is None:  # pragma: no cover - only the command line acts without an account
        raise TypeError("the API's caller is an account")
    return Reply(200, Me(account_id=actor.account_id, roles=sorted(actor.roles),
                         permissions=sorted(p.value for p in actor.permissions)))


ROUTES = (
    Route("GET", "/me", "getMe", "The calling administrator's roles and permissions", None, me,
          (200, Me, "The caller")),
)
