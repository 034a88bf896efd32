"""Certificate authorities in the admin API (issue 6): register from a PEM bundle (RFC 7468)
with a mapping profile (DESIGN.md §6), rename, change the profile, disable/enable, load a
CRL (RFC 5280 §5), and preview a profile on a sample certificate."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from certificates.errors import InvalidCrlError
from certificates.registry import CrlState as CrlView

from ..cas import CaOverview
from ..cas import MappingPreview as PreviewView
from ..roles import Permission
from .bodies import (
    MAX_UPLOAD,
    NO_CONTROL,
    PEM_LINES,
    PEM_SCHEMA,
    Body,
    DbId,
    Omittable,
    OneOf,
    Params,
    SchemaExtra,
    Timestamp,
    sent,
    timestamp,
)
from .operations import NOT_FOUND, PREFIX, Call, Reply, Route

Oid = Annotated[str, StringConstraints(max_length=256, pattern=r"^[0-2](\.(0|[1-9][0-9]{0,9})){1,20}$"), NO_CONTROL]
CaName = Annotated[str, StringConstraints(min_length=1, max_length=200), NO_CONTROL]
Province = Annotated[str, StringConstraints(min_length=1, max_length=64), NO_CONTROL]
Pem = Annotated[str, StringConstraints(min_length=1, max_length=MAX_UPLOAD), PEM_LINES, PEM_SCHEMA]
SamplePem = Annotated[str, StringConstraints(min_length=1, max_length=65536), PEM_LINES, PEM_SCHEMA]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=2000), NO_CONTROL]
IdentifierKind = Literal["uscc", "org_code", "reg_no"]


class MappingSource(Body):
    kind: Literal["extension", "subject"]
    oid: Oid
    yields: Omittable[list[IdentifierKind]] = Field(default=None, max_length=3)
    pattern: Annotated[str, StringConstraints(max_length=200), NO_CONTROL] | None = Field(
        default=None, description="Regular expression; its first group is the identifier.")
    strip_prefixes: Omittable[list[Annotated[str, StringConstraints(max_length=64), NO_CONTROL]]] = Field(
        default=None, max_length=10)


class MappingProfile(Body):
    """Where a CA's certificates carry the legal-person identifier (DESIGN.md §6): sources are tried in
    order; the first valid identifier wins."""

    sources: list[MappingSource] = Field(max_length=32)
    name_oids: Omittable[list[Oid]] = Field(default=None, max_length=10)
    require_digital_signature: Omittable[bool] = None
    required_ekus: Omittable[list[Oid]] = Field(default=None, max_length=10)
    revocation_unknown_allowed: Omittable[bool] = None
    sm2_signer_id: Omittable[Annotated[str, StringConstraints(min_length=1, max_length=128), NO_CONTROL]] = Field(
        default=None, description=(
            "SM2 signer ID (GB/T 32918.2 §5.5 user ID) of the CA's own signatures: certificates, CRLs, OCSP "
            "responses. Default 1234567812345678 (GM/T 0009)."))
    sm2_holder_signer_id: Omittable[Annotated[str, StringConstraints(min_length=1, max_length=128), NO_CONTROL]] = (
        Field(default=None, description=(
            "SM2 signer ID the holders' UKey middleware signs the login challenge with. Default 1234567812345678 "
            "(GM/T 0009).")))


class CaCertificate(Body):
    role: Annotated[str, OneOf(("root", "intermediate"))]
    subject: str
    issuer: str
    serial: str = Field(description="Hexadecimal.")
    not_before: Timestamp
    not_after: Timestamp
    sha256: str = Field(description="SHA-256 over the DER, hexadecimal.")
    expired: bool
    key_algorithm: str = Field(description="The certificate's key: SM2, RSA-2048, EC P-256, ...")
    signature_algorithm: str = Field(description="How its issuer signed it: SM2-with-SM3, sha256WithRSAEncryption, ...")


class CaRevocation(Body):
    crl_urls: list[str]
    ocsp_url: str | None
    crl_status: Annotated[str, OneOf(("none", "current", "stale"))] = Field(
        description="stale: the loaded CRL's nextUpdate has passed.")
    crl_number: str | None
    crl_this_update: Timestamp | None
    crl_next_update: Timestamp | None
    crl_loaded_at: Timestamp | None


class Ca(Body):
    id: int
    name: str
    province: str
    enabled: bool
    anchors_sha256: str
    certificates: list[CaCertificate]
    revocation: CaRevocation
    profile: MappingProfile
    created_at: Timestamp
    updated_at: Timestamp


class CaList(Body):
    items: list[Ca]


class CaCreate(Body):
    name: CaName
    province: Province
    pem_bundle: Pem = Field(description="PEM root certificate(s) and intermediate CA certificates.")
    profile: Omittable[MappingProfile] = Field(default=None, description="Omitted: the default GM/T 0015 placements.")
    crl_urls: Omittable[list[Uri]] = Field(default=None, max_length=8)
    ocsp_url: Annotated[str, StringConstraints(max_length=2000), NO_CONTROL] | None = None


class CaUpdate(Body):
    """Only the fields to change. With sample_pem, the new profile must find an identifier in that certificate
    or nothing changes."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Omittable[CaName] = None
    province: Omittable[Province] = None
    profile: Omittable[MappingProfile] = None
    sample_pem: Omittable[SamplePem] = None

    @model_validator(mode="after")
    def _names_a_field(self) -> CaUpdate:
        if not self.model_fields_set:
            raise PydanticCustomError("min_properties", "must name at least one field")
        return self


class CrlUpload(Body):
    """One of: the CRL as PEM text, or its DER as base64."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    pem: Omittable[Pem] = None
    der_base64: Omittable[Annotated[str, StringConstraints(
        min_length=1, max_length=MAX_UPLOAD, pattern="^[A-Za-z0-9+/]*={0,2}$"), SchemaExtra(contentEncoding="base64")]] = None

    @model_validator(mode="after")
    def _one_form(self) -> CrlUpload:
        if len(self.model_fields_set) != 1:
            raise PydanticCustomError("one_of", "must have exactly one of pem, der_base64")
        return self

    def data(self) -> bytes:
        """The uploaded CRL: PEM text, or DER sent as base64 (RFC 4648 §4). Raises
        ``InvalidCrlError`` for base64 that does not decode."""
        if self.pem is not None:
            return self.pem.encode("utf-8")
        try:
            return base64.b64decode(str(self.der_base64), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidCrlError("bad base64", public_message="der_base64 is not valid base64.") from None


class CrlState(Body):
    ca_id: int
    issuer: str
    crl_number: str | None
    this_update: Timestamp
    next_update: Timestamp | None
    entries: int


class MappingPreviewRequest(Body):
    """A sample certificate and the profile to try: profile, else CA ca_id's saved profile, else the default
    profile. Nothing is saved."""

    certificate_pem: SamplePem
    profile: Omittable[MappingProfile] = None
    ca_id: Omittable[int] = Field(default=None, ge=1, le=999999999999999999)


class MappedIdentifier(Body):
    kind: IdentifierKind
    value: str


class MappingPreview(Body):
    identifier: MappedIdentifier | None
    uscc: str | None = Field(description="The identifier when it is a USCC.")
    name: str | None
    reason: Annotated[str, OneOf(("no_identifier", "malformed_identifier"))] | None
    trail: list[str]
    profile_source: Annotated[str, OneOf(("given", "ca", "default"))]
    ca_id: int | None
    issuer_match: bool | None = Field(description=(
        "With a CA's profile: the sample names one of its certificates as issuer (a name match, not a validation)."))
    key_algorithm: str = Field(description="The sample's key: SM2, RSA-2048, EC P-256, ...")
    signature_algorithm: str = Field(description="How the sample was signed: SM2-with-SM3, ...")


class CaPath(Params):
    ca_id: DbId = Field(description="CA id")


# -- representations ------------------------------------------------------------------


def ca_json(view: CaOverview) -> Ca:
    row = view.row
    return Ca(
        id=row.id, name=row.name, province=row.province, enabled=bool(row.enabled),
        anchors_sha256=row.anchors_sha256,
        certificates=[CaCertificate(
            role=c.role, subject=c.subject, issuer=c.issuer, serial=c.serial, not_before=c.not_before.isoformat(),
            not_after=c.not_after.isoformat(), sha256=c.sha256, expired=c.expired, key_algorithm=c.key_algorithm,
            signature_algorithm=c.signature_algorithm) for c in view.certificates],
        revocation=CaRevocation(
            crl_urls=list(row.crl_urls or ()), ocsp_url=row.ocsp_url, crl_status=view.crl_status,
            crl_number=row.crl_number, crl_this_update=timestamp(row.crl_this_update),
            crl_next_update=timestamp(row.crl_next_update), crl_loaded_at=timestamp(row.crl_loaded_at)),
        profile=MappingProfile.model_validate(view.profile),
        created_at=row.created_at.isoformat(), updated_at=row.updated_at.isoformat(),
    )


def crl_json(state: CrlView) -> CrlState:
    return CrlState(ca_id=state.ca_id, issuer=state.issuer,
                    crl_number=str(state.crl_number) if state.crl_number is not None else None,
                    this_update=state.this_update.isoformat(), next_update=timestamp(state.next_update),
                    entries=state.entries)


def preview_json(preview: PreviewView) -> MappingPreview:
    result = preview.result
    found = result.identifier
    return MappingPreview(
        identifier=MappedIdentifier(kind=found.kind, value=found.value) if found is not None else None,
        uscc=preview.uscc, name=result.name, reason=result.reason, trail=list(result.trail),
        profile_source=preview.profile_source, ca_id=preview.ca_id, issuer_match=preview.issuer_match,
        key_algorithm=preview.key_algorithm, signature_algorithm=preview.signature_algorithm)


# -- handlers -------------------------------------------------------------------------


def _ca_id(call: Call) -> int:
    return int(call.params_as(CaPath).ca_id)


def list_cas(call: Call) -> Reply:
    return Reply(200, CaList(items=[ca_json(v) for v in call.admin.cas.all(call.actor)]))


def create_ca(call: Call) -> Reply:
    view = call.admin.cas.add(call.actor, **sent(call.body_as(CaCreate)))
    return Reply(201, ca_json(view), {"Location": f"{PREFIX}/cas/{view.row.id}"})


def get_ca(call: Call) -> Reply:
    return Reply(200, ca_json(call.admin.cas.get(call.actor, _ca_id(call))))


def update_ca(call: Call) -> Reply:
    body = call.body_as(CaUpdate)
    view = call.admin.cas.update(call.actor, _ca_id(call), name=body.name, province=body.province,
                                 profile=sent(body).get("profile"),
                                 sample=body.sample_pem.encode("utf-8") if body.sample_pem else None)
    return Reply(200, ca_json(view))


def disable_ca(call: Call) -> Reply:
    return Reply(200, ca_json(call.admin.cas.set_enabled(call.actor, _ca_id(call), False)))


def enable_ca(call: Call) -> Reply:
    return Reply(200, ca_json(call.admin.cas.set_enabled(call.actor, _ca_id(call), True)))


def upload_crl(call: Call) -> Reply:
    return Reply(200, crl_json(call.admin.cas.load_crl(call.actor, _ca_id(call), call.body_as(CrlUpload).data())))


def preview_mapping(call: Call) -> Reply:
    body = call.body_as(MappingPreviewRequest)
    preview = call.admin.cas.preview(call.actor, body.certificate_pem.encode("utf-8"), profile=sent(body).get("profile"),
                                     ca_id=body.ca_id)
    return Reply(200, preview_json(preview))


ROUTES = (
    Route("GET", "/cas", "listCas", "Registered certificate authorities with certificates and revocation state",
          Permission.CAS_READ, list_cas, (200, CaList, "Every CA")),
    Route("POST", "/cas", "createCa",
          "Register a CA from a PEM bundle (roots + intermediates) and a mapping profile; the bundle is checked "
          "(CA flags, keyCertSign, validity, chaining) before anything is saved", Permission.CAS_WRITE, create_ca,
          (201, Ca, "Registered"), request=CaCreate, errors=(400, 401, 403, 409, 422)),
    Route("GET", "/cas/{ca_id}", "getCa", "One CA", Permission.CAS_READ, get_ca, (200, Ca, "The CA"),
          params=CaPath, errors=NOT_FOUND),
    Route("PATCH", "/cas/{ca_id}", "updateCa", "Rename a CA or replace its mapping profile", Permission.CAS_WRITE,
          update_ca, (200, Ca, "Updated"), request=CaUpdate, params=CaPath,
          errors=(400, 401, 403, 404, 409, 422)),
    Route("POST", "/cas/{ca_id}/disable", "disableCa", "Stop trusting a CA (its certificates are refused)",
          Permission.CAS_WRITE, disable_ca, (200, Ca, "Disabled"), params=CaPath, errors=NOT_FOUND),
    Route("POST", "/cas/{ca_id}/enable", "enableCa", "Trust a disabled CA again", Permission.CAS_WRITE, enable_ca,
          (200, Ca, "Enabled"), params=CaPath, errors=NOT_FOUND),
    Route("POST", "/cas/{ca_id}/crl", "uploadCrl",
          "Load a CRL (PEM text or base64 DER, up to the 1 MiB request limit): signed by this CA, current, not "
          "older than the loaded one (RFC 5280 §5.2.3)", Permission.CAS_WRITE, upload_crl,
          (200, CrlState, "The CRL now loaded"), request=CrlUpload, params=CaPath, errors=NOT_FOUND),
    Route("POST", "/cas/mapping-preview", "previewMapping",
          "Map a sample certificate with a profile (or a CA's saved profile) and show the trail; saves nothing",
          Permission.CAS_READ, preview_mapping, (200, MappingPreview, "What the profile finds, and why"),
          request=MappingPreviewRequest, errors=NOT_FOUND),
)
