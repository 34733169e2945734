"""Property-based checks of the whole API against its own OpenAPI schema (Schemathesis over ASGI).

Every operation of /schema/openapi.json gets generated requests, valid and not; each answer must not be a
server error and must match what the schema says about that status (body schema, content type)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.python import asgi

from tests.support.embedded import ISOLATED_ENV
from transmute.cli.embedded import create_embedded_app


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ISOLATED_ENV:
            patch.delenv(name, raising=False)
        patch.setenv("TRANSMUTE_ALLOW_PRIVATE_URLS", "false")  # the production rule for generated URLs
        app = create_embedded_app(tmp_path_factory.mktemp("schemathesis-data"), threads=1)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    yield schema
    asgi.shutdown_lifespans()


schema = schemathesis.pytest.from_fixture("api_schema")
"""Loaded when the test runs, not at collection: the app (and its worker thread) only lives for this module."""


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """Schemathesis' lazy loader reads `node._nodeid`, which pytest 9 no longer keeps; give it the node id."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_every_operation_answers_without_a_server_error_and_as_its_schema_says(case) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
