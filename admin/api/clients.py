"""Relying parties (portals) in the admin API (issue 6): registration bodies, the client
as sent, and search, create, change, secret rotation, enable/disable, delete and usage.
Grant types and authentication methods are the protocol's (``idp.protocol``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from idp import protocol
from idp.clients import ClientService
from idp.models import Client as ClientRow

from ..clients import ClientUsage as Usage
from ..roles import Permission
from .bodies import NO_CONTROL, Body, DbId, Omittable, OneOf, Params, QueryInt, Timestamp, sent, timestamp
from .operations import NOT_FOUND, PREFIX, Call, Page, Reply, Route, page_reply

Uri = Annotated[str, StringConstraints(min_length=1, max_length=2000), NO_CONTROL]
NullableUri = Annotated[str, StringConstraints(max_length=2000), NO_CONTROL] | None
ClaimName = Annotated[str, StringConstraints(max_length=64), NO_CONTROL]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]
GrantType = Annotated[str, OneOf(protocol.GRANT_TYPES)]
AuthMethod = Annotated[str, OneOf(protocol.AUTH_METHODS)]
SubjectType = Literal["pairwise", "public"]
FIRST_PARTY = ("A first-party administration tool: the only kind of client that may have the admin scope. Set and "
               "changed by superadmins only (issue 17).")


class ClaimRule(Body):
    """Why the portal receives the claim (shown to the citizen) and the legal basis (PIPL Art. 13)."""

    purpose: Annotated[str, StringConstraints(min_length=1, max_length=200), NO_CONTROL]
    basis: Omittable[Literal["consent", "statutory"]] = None
    required: Omittable[bool] = None


class Jwks(Body):
    """The client's public JWK set (RFC 7517 §5), for private_key_jwt."""

    # RFC 7517 §5: a JWK set may carry other members.
    model_config = ConfigDict(extra="allow")

    keys: list[dict[str, Any]] = Field(max_length=20)


class ClientFields(Body):
    """The registration members a client is created with and changed by."""

    name: Omittable[Annotated[str, StringConstraints(min_length=1, max_length=200), NO_CONTROL]] = None
    redirect_uris: Omittable[list[Uri]] = Field(default=None, max_length=50)
    post_logout_redirect_uris: Omittable[list[Uri]] = Field(default=None, max_length=50)
    backchannel_logout_uri: NullableUri = None
    frontchannel_logout_uri: NullableUri = None
    grant_types: Omittable[list[GrantType]] = Field(default=None, max_length=3)
    scopes: Omittable[list[Scope]] = Field(default=None, max_length=20)
    token_endpoint_auth_method: Omittable[AuthMethod] = None
    subject_type: Omittable[SubjectType] = None
    sector_identifier_uri: NullableUri = None
    jwks: Jwks | None = None
    claim_policy: Omittable[dict[ClaimName, ClaimRule]] = Field(default=None, max_length=50)
    sensitive_claims_allowed: Omittable[bool] = None
    first_party: Omittable[bool] = Field(default=None, description=FIRST_PARTY)


class ClientCreate(ClientFields):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200), NO_CONTROL]
    public: Omittable[bool] = None


class ClientUpdate(ClientFields):
    """Only the fields to change; the whole registration is validated again."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _names_a_field(self) -> ClientUpdate:
        if not self.model_fields_set:
            raise PydanticCustomError("min_properties", "must name at least one field")
        return self


class Client(Body):
    client_id: str
    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str | None
    frontchannel_logout_uri: str | None
    grant_types: list[GrantType]
    scopes: list[str]
    token_endpoint_auth_method: AuthMethod
    subject_type: SubjectType
    jwks: Jwks | None
    claim_policy: dict[str, ClaimRule]
    sensitive_claims_allowed: bool
    first_party: bool = Field(description=FIRST_PARTY)
    sector_identifier: str
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp


class ClientWithSecret(Body):
    """client_secret is shown once, when created or changed; null when there is none."""

    client: Client
    client_secret: str | None


class ClientPage(Page):
    items: list[Client]


class ClientSecret(Body):
    client_id: str
    client_secret: str


class ConsentCounts(Body):
    active: int
    withdrawn: int
    expired: int


class DisclosureCounts(Body):
    total: int
    by_basis: dict[str, int]
    last_at: Timestamp | None


class ClientUsage(Body):
    client_id: str
    consents: ConsentCounts
    disclosures: DisclosureCounts


class ClientSearch(Params):
    q: Omittable[Annotated[str, StringConstraints(max_length=200), NO_CONTROL]] = Field(
        default=None, description="Part of the name (any case), or an exact client_id")
    limit: QueryInt = Field(default=50, ge=1, le=200, description="Page size (default 50)")
    cursor: Omittable[DbId] = Field(
        default=None, description="next_cursor of the previous page")


class ClientPath(Params):
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]


def client_json(row: ClientRow) -> Client:
    return Client(client_id=row.client_id, **ClientService.registration_of(row),
                  sector_identifier=row.sector_identifier, enabled=bool(row.enabled),
                  created_at=row.created_at.isoformat(), updated_at=row.updated_at.isoformat())


def usage_json(client_id: str, usage: Usage) -> ClientUsage:
    return ClientUsage(
        client_id=client_id,
        consents=ConsentCounts(active=usage.consents_active, withdrawn=usage.consents_withdrawn,
                               expired=usage.consents_expired),
        disclosures=DisclosureCounts(total=usage.disclosures_total, by_basis=usage.disclosures_by_basis,
                                     last_at=timestamp(usage.last_disclosure_at)))


def _client_id(call: Call) -> str:
    return call.params_as(ClientPath).client_id


def list_clients(call: Call) -> Reply:
    params = call.params_as(ClientSearch)
    page = call.admin.clients.search(call.actor, query=params.q, limit=params.limit, cursor=params.cursor)
    return page_reply(ClientPage(items=[client_json(c) for c in page.items], next_cursor=page.next_cursor),
                      "/clients", params)


def create_client(call: Call) -> Reply:
    row, secret = call.admin.clients.create(call.actor, **sent(call.body_as(ClientCreate)))
    return Reply(201, ClientWithSecret(client=client_json(row), client_secret=secret),
                 {"Location": f"{PREFIX}/clients/{row.client_id}"})


def get_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.get(call.actor, _client_id(call))))


def update_client(call: Call) -> Reply:
    row, secret = call.admin.clients.update(call.actor, _client_id(call), **sent(call.body_as(ClientUpdate)))
    return Reply(200, ClientWithSecret(client=client_json(row), client_secret=secret))


def delete_client(call: Call) -> Reply:
    call.admin.clients.delete(call.actor, _client_id(call))
    return Reply(204, None)


def rotate_client_secret(call: Call) -> Reply:
    client_id = _client_id(call)
    return Reply(200, ClientSecret(client_id=client_id,
                                   client_secret=call.admin.clients.rotate_secret(call.actor, client_id)))


def disable_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.set_enabled(call.actor, _client_id(call), False)))


def enable_client(call: Call) -> Reply:
    return Reply(200, client_json(call.admin.clients.set_enabled(call.actor, _client_id(call), True)))


def client_usage(call: Call) -> Reply:
    client_id = _client_id(call)
    return Reply(200, usage_json(client_id, call.admin.clients.usage(call.actor, client_id)))


ROUTES = (
    Route("GET", "/clients", "listClients", "Search clients (keyset pagination)", Permission.CLIENTS_READ,
          list_clients, (200, ClientPage, "One page of clients; next_cursor and a Link rel=next when more"),
          params=ClientSearch),
    Route("POST", "/clients", "createClient", "Register a client; its secret is returned once",
          Permission.CLIENTS_WRITE, create_client, (201, ClientWithSecret, "Created"), request=ClientCreate),
    Route("GET", "/clients/{client_id}", "getClient", "One client", Permission.CLIENTS_READ, get_client,
          (200, Client, "The client"), params=ClientPath, errors=NOT_FOUND),
    Route("PATCH", "/clients/{client_id}", "updateClient",
          "Change fields of a client; a new secret is returned when the change needs one",
          Permission.CLIENTS_WRITE, update_client, (200, ClientWithSecret, "Updated"), request=ClientUpdate,
          params=ClientPath, errors=NOT_FOUND),
    Route("DELETE", "/clients/{client_id}", "deleteClient", "Delete a client", Permission.CLIENTS_WRITE,
          delete_client, (204, None, "Deleted"), params=ClientPath, errors=NOT_FOUND),
    Route("POST", "/clients/{client_id}/secret", "rotateClientSecret",
          "New client secret, returned once; the old one stops working", Permission.CLIENTS_WRITE,
          rotate_client_secret, (200, ClientSecret, "The new secret"), params=ClientPath, errors=NOT_FOUND),
    Route("POST", "/clients/{client_id}/disable", "disableClient", "Disable a client (no logins, no tokens)",
          Permission.CLIENTS_WRITE, disable_client, (200, Client, "Disabled"), params=ClientPath,
          errors=NOT_FOUND),
    Route("POST", "/clients/{client_id}/enable", "enableClient", "Enable a disabled client",
          Permission.CLIENTS_WRITE, enable_client, (200, Client, "Enabled"), params=ClientPath,
          errors=NOT_FOUND),
    Route("GET", "/clients/{client_id}/usage", "getClientUsage", "Consent and disclosure counts of a client",
          Permission.CLIENTS_READ, client_usage, (200, ClientUsage, "Counts"), params=ClientPath,
          errors=NOT_FOUND),
)
