"""What one admin API operation is: its route (method, path, permission, models, handler),
the parsed call a handler gets and the reply it gives, and the one way a list answers
with its next page (RFC 8288 Link). The resource modules declare their routes with these."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from ..actor import Actor
from ..roles import Permission
from ..service import AdminServices
from .bodies import Body, Params

PREFIX = "/admin/api/v1"
NDJSON = "application/x-ndjson"
# The error statuses an operation answers, by what it does.
ERRORS = (400, 401, 403, 422)
NOT_FOUND = (400, 401, 403, 404, 422)
CONFLICT = (400, 401, 403, 404, 409, 422)

M = TypeVar("M", bound=BaseModel)


def _as(value: BaseModel | None, model: type[M]) -> M:
    if not isinstance(value, model):
        # A route declares one model and its handler reads another: a programming error.
        raise TypeError(f"expected {model.__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Call:
    """One parsed request: who, the operations, the validated body and parameters."""

    actor: Actor
    admin: AdminServices
    body: Body | None = None
    params: Params | None = None

    def body_as(self, model: type[M]) -> M:
        return _as(self.body, model)

    def params_as(self, model: type[M]) -> M:
        return _as(self.params, model)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Body | None
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body (e.g. the audit export) instead of ``body``, sent as ``media_type``.
    stream: Iterator[str] | None = None
    media_type: str = "application/json"
    # Steps run after the transaction committed (then committed in turn): notifications
    # that must not go out for a change that could still roll back (back-channel logout).
    after_commit: tuple[Callable[[], object], ...] = ()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template, relative to PREFIX
    operation_id: str
    summary: str
    # None: any administrator (the caller's own profile).
    permission: Permission | None
    handler: Callable[[Call], Reply]
    # Status, response model (its instances are what the handler replies), description.
    success: tuple[int, type[Body] | None, str]
    request: type[Body] | None = None
    request_required: bool = True
    params: type[Params] | None = None
    errors: tuple[int, ...] = ERRORS
    media_type: str = "application/json"  # of the success response

    @property
    def flask_rule(self) -> str:
        return PREFIX + self.path.replace("{", "<").replace("}", ">")


class Page(Body):
    """One page of a keyset-paginated list."""

    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page.")


def page_reply(page: Page, path: str, params: Params) -> Reply:
    """``page`` as the reply to GET ``path``; when there is a next page, also as an RFC
    8288 §3 ``Link: <...>; rel="next"`` for generic clients, with the same parameters
    (empty ones left out) and the new cursor."""
    headers = {}
    if page.next_cursor:
        args = {k: v for k, v in params.model_dump().items() if v is not None and v != ""}
        args["cursor"] = page.next_cursor
        headers["Link"] = f'<{PREFIX}{path}?{urlencode(args)}>; rel="next"'
    return Reply(200, page, headers)

