"""What every admin API body and parameter is built from (issue 11): the pydantic base
classes, the text rules shared by all fields, the parsing of a request into a model with
RFC 9457-style field errors, and the OpenAPI 3.1 (JSON Schema 2020-12) schemas generated
from the same models, so what is documented is what is enforced and what is sent. No Flask."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue, models_json_schema
from pydantic_core import PydanticCustomError, core_schema

from common.errors import ValidationError

REF_TEMPLATE = "#/components/schemas/{model}"
MAX_ERRORS = 20
# PEM text (RFC 7468) is lines: PEM_LINES lets line breaks through, and PEM_SCHEMA says
# so in the document with this media type.
PEM_MEDIA_TYPE = "application/x-pem-file"
MAX_UPLOAD = 1024 * 1024  # the application's request size limit

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """A JSON object of the API, in either direction. Strict: JSON types are never coerced
    ("1" is no integer, 1 no string, true no integer), and unknown members are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Params(BaseModel):
    """The path and query parameters of one operation; a field named in the path template
    is a path parameter, any other a query parameter. Other query parameters are ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)


# -- the rules of text ------------------------------------------------------------------


def _no_control_characters(value: str) -> str:
    # Policy: no control characters in any text (PostgreSQL refuses NUL; the others have
    # no business in names, URIs and identifiers).
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


def _pem_lines(value: str) -> str:
    # RFC 7468 §2: PEM text is lines, so line breaks and tabs are allowed there, and only there.
    if any((ord(c) < 32 and c not in "\r\n\t") or ord(c) == 127 for c in value):
        raise PydanticCustomError("control_characters", "must not contain control characters")
    return value


class SchemaExtra:
    """Members added to a type's published schema (``format``, ``contentMediaType``...)
    that its validation does not imply; usable at any depth of an annotation."""

    def __init__(self, **members: Any) -> None:
        self.members = members

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: pydantic.GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        return {**handler(schema), **self.members}


NO_CONTROL = AfterValidator(_no_control_characters)
PEM_LINES = AfterValidator(_pem_lines)
PEM_SCHEMA = SchemaExtra(contentMediaType=PEM_MEDIA_TYPE)

# A date-time member (RFC 3339 §5.6, with its offset), as ``timestamp`` or the services format it.
Timestamp = Annotated[str, SchemaExtra(format="date-time")]


def timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


_DECIMAL = re.compile(r"-?[0-9]{1,9}", re.ASCII)


def _decimal(value: Any) -> Any:
    # A query parameter is text: an integer is written in ASCII digits and nothing else
    # (no "+5", "5.0", "1_0" or non-ASCII digits, which int() would take).
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise PydanticCustomError("int_parsing", "must be integer")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_decimal)]
# A database row's id in a path, and a keyset cursor over such ids: 1-18 digits.
DbId = Annotated[str, StringConstraints(pattern="^[0-9]{1,18}$")]


class OneOf:
    """A string that is one of ``values``, for vocabularies declared elsewhere (the
    protocol's grant types, the alert kinds): ``Annotated[str, OneOf(GRANT_TYPES)]``
    validates and publishes them as an enum."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = list(values)

    def __get_pydantic_core_schema__(self, source: Any, handler: pydantic.GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        return core_schema.literal_schema(self.values)


def _not_null(value: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
    if value is None:
        raise PydanticCustomError("not_null", "must not be null")
    return handler(value)


class _NeverNull:
    """Marks ``T | None`` as "may be omitted, never null": None is only the value of an
    omitted field (defaults are not validated), an explicit null is refused, and the
    published schema has no null branch."""

    def __get_pydantic_core_schema__(self, source: Any, handler: pydantic.GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        return core_schema.no_info_wrap_validator_function(_not_null, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: pydantic.GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        out = handler(schema)
        options = out.get("anyOf", [])
        if len(options) == 2 and {"type": "null"} in options:
            rest = {k: v for k, v in out.items() if k != "anyOf"}
            return {**next(o for o in options if o != {"type": "null"}), **rest}
        return out


# A member that may be left out but is never null; handlers pass on what was sent
# (``sent``), so an omitted member leaves the service's default in place.
Omittable = Annotated[T | None, _NeverNull()]


def sent(body: BaseModel) -> dict[str, Any]:
    """The members the caller sent, as JSON data (nested models too): what a service
    takes as keyword arguments, with its own defaults for the rest."""
    return body.model_dump(exclude_unset=True)


# -- problems -----------------------------------------------------------------------------


class FieldError(Body):
    field: str = Field(description="The member, as a path: redirect_uris/0, claim_policy/email/purpose; "
                                   "body for the whole body.")
    detail: str


class Problem(Body):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: Omittable[str] = None
    code: str = Field(description="Stable machine-readable code.")
    errors: Omittable[list[FieldError]] = None


class FieldValidationError(ValidationError):
    """A request breaks its published schema; ``errors`` name each field."""

    code = "invalid_input"
    public_message = "The request does not match its schema."
    status_code = 422

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind == "too_long" and "max_length" in ctx:
        return f"at most {ctx['max_length']} {'entries' if ctx.get('field_type') == 'Dictionary' else 'items'}"
    return str(error["msg"])


def field_errors(exc: pydantic.ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs of a failed validation, at most ``MAX_ERRORS``: fields as
    slash-separated paths, messages plain English without the input."""
    out = []
    for error in exc.errors(include_url=False, include_input=False)[:MAX_ERRORS]:
        loc = [str(part) for part in error["loc"]]
        if loc and loc[-1] == "[key]":  # a dict key that breaks its rule: name the key
            loc.pop()
        out.append(("/".join(loc) or "body", _message(error)))
    return out


def parse_body(model: type[M], raw: bytes) -> M:
    """``raw`` as a ``model``. Raises ``FieldValidationError``: "body" for text that is
    not JSON (RFC 8259 §8.1 UTF-8 only; §8.2 a lone surrogate is no Unicode text, and
    nesting is bounded), else the fields that break their rules."""
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
            raise FieldValidationError([("body", "is not JSON")]) from None
        raise FieldValidationError(field_errors(exc)) from None


def parse_params(model: type[M], values: Mapping[str, str]) -> M:
    """Path and query ``values`` (text) as a ``model``. Raises ``FieldValidationError``
    naming each parameter that breaks its rule."""
    try:
        return model.model_validate(dict(values))
    except pydantic.ValidationError as exc:
        raise FieldValidationError(field_errors(exc)) from None


# -- schemas ------------------------------------------------------------------------------


class _Generator(GenerateJsonSchema):
    """JSON Schema as the API publishes it: no generated titles, and no defaults (an
    omitted member is left to the service, which the descriptions explain)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def component_schemas(requests: Iterable[type[BaseModel]], responses: Iterable[type[BaseModel]]
                      ) -> dict[str, JsonSchemaValue]:
    """``components.schemas``: request models as validated, response models as sent,
    named after their classes."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in requests), *((m, "serialization") for m in responses)]
    _, document = models_json_schema(models, ref_template=REF_TEMPLATE, schema_generator=_Generator)
    schemas: dict[str, JsonSchemaValue] = document.get("$defs", {})
    for schema in schemas.values():
        schema.pop("title", None)
        if "description" in schema:  # a docstring: one paragraph, as written in the source
            schema["description"] = " ".join(schema["description"].split())
    return schemas


def parameters(model: type[Params], path: str) -> list[dict[str, Any]]:
    """OpenAPI parameter objects of ``model``: in the path when ``{name}`` is in the
    ``path`` template (and then required), else in the query."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=_Generator)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", "")
        location = "path" if f"{{{name}}}" in path else "query"
        out.append({"name": name, "in": location, "required": location == "path" or name in required,
                    "schema": prop, **({"description": description} if description else {})})
    return out
