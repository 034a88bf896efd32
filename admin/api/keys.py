"""Token signing keys in the admin API (issue 6): list with state, rotate, retire
(RFC 7517; OIDC Core §10.1.1 rotation with overlap)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from idp.keys import ALGORITHMS
from idp.models import SigningKey

from ..roles import Permission
from .bodies import NO_CONTROL, Body, Omittable, OneOf, Params, Timestamp, sent, timestamp
from .operations import NOT_FOUND, Call, Reply, Route

Algorithm = Annotated[str, OneOf(ALGORITHMS)]


class Key(Body):
    kid: str
    alg: Algorithm
    state: Annotated[str, OneOf(("next", "active", "retired"))]
    published: bool = Field(description="In the JWKS now.")
    created_at: Timestamp
    activated_at: Timestamp | None
    retired_at: Timestamp | None
    unpublish_after: Timestamp | None


class KeyList(Body):
    items: list[Key]


class KeyRotate(Body):
    alg: Omittable[Algorithm] = Field(default=None, description="Only this algorithm; default every algorithm.")


class KeyRetire(Body):
    unpublish: Omittable[bool] = Field(default=None, description="Also remove it from the JWKS now (compromise).")


class KeyPath(Params):
    kid: Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]


def key_json(row: SigningKey, published: set[str]) -> Key:
    return Key(kid=row.kid, alg=row.alg, state=row.state, published=row.kid in published,
               created_at=row.created_at.isoformat(), activated_at=timestamp(row.activated_at),
               retired_at=timestamp(row.retired_at), unpublish_after=timestamp(row.unpublish_after))


def _key_list(call: Call, rows: list[SigningKey]) -> Reply:
    published = {k.kid for k in call.admin.services.keys.published()}
    return Reply(200, KeyList(items=[key_json(k, published) for k in rows]))


def list_keys(call: Call) -> Reply:
    return _key_list(call, call.admin.keys.all(call.actor))


def rotate_keys(call: Call) -> Reply:
    return _key_list(call, call.admin.keys.rotate(call.actor, **sent(call.body_as(KeyRotate))))


def retire_key(call: Call) -> Reply:
    row = call.admin.keys.retire(call.actor, call.params_as(KeyPath).kid, **sent(call.body_as(KeyRetire)))
    return Reply(200, key_json(row, {k.kid for k in call.admin.services.keys.published()}))


ROUTES = (
    Route("GET", "/keys", "listKeys", "Signing keys with their state", Permission.KEYS_READ, list_keys,
          (200, KeyList, "Every key")),
    Route("POST", "/keys/rotate", "rotateKeys", "Promote the next key(s); returns the newly active keys",
          Permission.KEYS_WRITE, rotate_keys, (200, KeyList, "Newly active keys"), request=KeyRotate,
          request_required=False, errors=NOT_FOUND),
    Route("POST", "/keys/{kid}/retire", "retireKey", "Retire one key ahead of schedule", Permission.KEYS_WRITE,
          retire_key, (200, Key, "The retired key"), request=KeyRetire, request_required=False,
          params=KeyPath, errors=(*NOT_FOUND, 409)),
)
