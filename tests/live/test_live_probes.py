"""Probes of FIDELITY.md's *assumed* rows against the real service (live mode only).

Each probe asks Azure ML what the emulator assumes and asserts the assumption, so a live run that fails here
names a row of ``mlflow_azureml_registry/local/FIDELITY.md`` to correct (and the emulator with it). The requests go
through the plugin's own gateway client (``azure/arm.py``), on models under the run's prefix that the session's
cleanup removes. On the emulator the same rows are checked by ``tests/local``; ``--live-only-on-emulator`` runs these
probes there too, to check the probes themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Optional

import pytest

pytestmark = pytest.mark.live_only(
    "probes FIDELITY.md's assumed rows against a real workspace (tests/local checks the emulator against them)"
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def _header(answer: Any, name: str) -> Optional[str]:
    return next((v for k, v in answer.headers.items() if k.lower() == name.lower()), None)


@pytest.fixture
def arm(workspace) -> Iterator[Any]:
    """The plugin's control-plane client, with the plugin's credential."""
    from mlflow_azureml_registry import credentials, settings
    from mlflow_azureml_registry.azure.arm import ArmClient

    endpoint = settings.resource_manager_url()
    client = ArmClient(endpoint, credentials.resolve(endpoint), settings.http_settings())
    yield client
    client.close()


@pytest.fixture
def model_path(workspace, client, model_name, tmp_path) -> str:
    """The ARM path of a model with one version (registered through the plugin; files of its own)."""
    from mlflow_azureml_registry.uri import parse_registry_uri

    (tmp_path / "weights.bin").write_bytes(model_name.encode())
    client.create_registered_model(model_name)
    client.create_model_version(model_name, str(tmp_path))
    return f"{parse_registry_uri(workspace.registry_uri()).arm_path}/models/{model_name}"


def test_delete_of_a_version_answers_200_then_204(arm, model_path):
    """Row: DELETE version answers 200 when it existed and 204 when it did not (assumed: ARM convention)."""
    assert arm.request("DELETE", f"{model_path}/versions/1", what="probe", ok=(200, 204)).status == 200
    assert arm.request("DELETE", f"{model_path}/versions/1", what="probe", ok=(200, 204)).status == 204


def test_an_unknown_version_of_a_known_model_is_model_version_not_found(arm, model_path):
    """Row: GET of an unknown version of a known model gives 404 UserError / ModelVersionNotFound (detail code
    assumed)."""
    answer = arm.request("GET", f"{model_path}/versions/99", what="probe", ok=(404,))
    error = (answer.body or {}).get("error") or {}
    assert error.get("code") == "UserError", error
    assert "ModelVersionNotFound" in [d.get("code") for d in error.get("details") or []], error


def test_answers_carry_a_request_id_and_the_same_correlation_id(arm, model_path):
    """Rows: every answer carries x-ms-request-id (a UUID: format assumed) and x-ms-correlation-request-id (same
    value: assumed)."""
    answer = arm.request("GET", model_path, what="probe")
    request_id = _header(answer, "x-ms-request-id")
    assert request_id and UUID.match(request_id), answer.headers
    assert _header(answer, "x-ms-correlation-request-id") == request_id, answer.headers


def test_an_update_without_stage_keeps_it_and_null_makes_it_development(arm, model_path):
    """Row: on update, an omitted stage keeps the stored stage; explicit null becomes Development (assumed)."""
    path = f"{model_path}/versions/1"
    body = arm.request("GET", path, what="probe").body
    properties = dict(body["properties"], stage="Staging")
    assert arm.request("PUT", path, body={"properties": properties}, what="probe").body["properties"]["stage"] == (
        "Staging"
    )
    properties.pop("stage")
    kept = arm.request("PUT", path, body={"properties": properties}, what="probe").body["properties"]
    assert kept.get("stage") == "Staging"
    reset = arm.request("PUT", path, body={"properties": dict(properties, stage=None)}, what="probe").body
    assert reset["properties"].get("stage") == "Development"


def test_a_container_put_answers_201_with_location_then_200(arm, workspace, model_name):
    """Row: container PUT answers 201 + Location on create (assumed by analogy with versions), 200 on update."""
    from mlflow_azureml_registry.uri import parse_registry_uri

    path = f"{parse_registry_uri(workspace.registry_uri()).arm_path}/models/{model_name}-c"
    body = {"properties": {"description": "probe", "tags": {}, "properties": {}}}
    created = arm.request("PUT", path, body=body, what="probe", ok=(200, 201))
    assert created.status == 201 and _header(created, "Location"), created.headers
    updated = arm.request("PUT", path, body=body, what="probe", ok=(200, 201))
    assert updated.status == 200
