"""Contract test of the admin API against its own OpenAPI 3.1 document (issue 6):
schemathesis generates requests from the published schemas — valid and invalid — and
sends them to the Flask app in-process (WSGI) with a superadmin's token; every response
must be documented for its operation (status, content type, body schema) and none may
be a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from admin.api.routes import PREFIX, ROUTES
from tests.functional._admin_api import bearer, issued_token, make_admin, make_admin_client

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def admin_headers(services, clock):
    tool = make_admin_client(services)
    root = make_admin(services, clock, "contract", "superadmin")
    return bearer(issued_token(services, clock, tool.client_id, root.account_id))


# Invalid input can only be generated for operations that take some.
CASES = [(r.operation_id, GenerationMode.POSITIVE) for r in ROUTES] + [
    (r.operation_id, GenerationMode.NEGATIVE) for r in ROUTES if r.params or r.request
]


@pytest.mark.parametrize(("operation_id", "mode"), CASES)
def test_api_conforms_to_its_openapi_document(app, admin_headers, operation_id, mode):
    # Deviation: schemathesis' own pytest integration (``schema.parametrize`` with a
    # fixture) reads ``request.node._nodeid``, which pytest 9 no longer has; the same
    # generation runs here through Hypothesis' ``given`` instead.
    operation = schemathesis.openapi.from_wsgi("/admin/api/v1/openapi.json", app).find_operation_by_id(operation_id)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def check(case):
        case.call_and_validate(headers=admin_headers, checks=CHECKS)

    check()


def test_the_document_is_openapi_3_1_with_every_route(http):
    document = http.get("/admin/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    published = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert published == {(r.method, PREFIX + r.path) for r in ROUTES}
