"""Unclear answers are settled by reading back, and a write of several steps is all or nothing (issue #15).

The local workspace's interceptor plays the service: it does the write, then answers 5xx or 429 (as Azure can
after it wrote), or answers every attempt with 503 without writing.
"""

from __future__ import annotations

import json

import pytest
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry.local.handlers import Response

from .test_gateway_and_protocol import Script

pytestmark = pytest.mark.emulator_only("loses answers and fails writes through the emulator's interceptor")

WS = "local-ws"


@pytest.fixture
def intercept(workspace, monkeypatch):
    monkeypatch.setenv("MLFLOW_AZUREML_RETRY_TOTAL", "1")  # the retries give up quickly

    from mlflow_azureml_registry import session

    session.reset()

    def install(**kwargs):
        workspace.set_interceptor(Script(**kwargs))

    yield install
    workspace.set_interceptor(None)
    session.reset()


def _is(request, method, suffix):
    return request.method == method and request.path.endswith(suffix)


def _busy(status=503):
    headers = {"Retry-After": "0"} if status == 429 else {}
    return Response(status, {"error": {"code": "ServiceBusy", "message": "try later"}}, headers)


@pytest.fixture
def versions(client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    for _ in range(3):
        client.create_model_version(model_name, str(sklearn_model_dir))
    return model_name


def test_a_delete_done_but_answered_with_500_is_a_delete(workspace, client, versions, intercept):
    def before(request):
        if _is(request, "DELETE", f"/models/{versions}/versions/2"):
            workspace.state.delete_version(WS, versions, "2")  # the service deleted it, then failed to answer
            return _busy(500)
        return None

    intercept(before=before)
    client.delete_model_version(versions, "2")  # no error: the version is gone, as asked
    workspace.set_interceptor(None)
    assert sorted(v.version for v in client.search_model_versions(f"name = '{versions}'")) == [1, 3]


def test_a_tag_stored_but_answered_with_429_is_stored(workspace, client, versions, intercept):
    def before(request):
        if _is(request, "PUT", f"/models/{versions}/versions/1"):
            body = json.loads(request.body)
            workspace.state.put_version(WS, versions, "1", body["properties"])  # written, then "throttled"
            return _busy(429)
        return None

    intercept(before=before)
    client.set_model_version_tag(versions, "1", "k", "v")
    workspace.set_interceptor(None)
    assert client.get_model_version(versions, "1").tags == {"k": "v"}


def test_a_write_that_did_not_happen_still_fails(workspace, client, versions, intercept):
    intercept(before=lambda r: _busy(503) if _is(r, "PUT", f"/models/{versions}/versions/1") else None)
    with pytest.raises(MlflowException) as info:
        client.set_model_version_tag(versions, "1", "k", "v")
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    workspace.set_interceptor(None)
    assert client.get_model_version(versions, "1").tags == {}


def _stages(workspace, name):
    return {v: workspace.state.get_version(WS, name, v)["properties"].get("stage") for v in ("1", "2", "3")}


def test_a_transition_that_cannot_archive_puts_everything_back(workspace, client, versions, intercept):
    client.transition_model_version_stage(versions, "1", "Production")
    client.transition_model_version_stage(versions, "2", "Production")
    before = _stages(workspace, versions)
    stamps = {v: client.get_model_version(versions, v).last_updated_timestamp for v in ("1", "2", "3")}
    # Archiving version 2 fails for good (every attempt answered 503, nothing written).
    intercept(before=lambda r: _busy(503) if _is(r, "PUT", f"/models/{versions}/versions/2") else None)
    with pytest.raises(MlflowException) as info:
        client.transition_model_version_stage(versions, "3", "Production", archive_existing_versions=True)
    workspace.set_interceptor(None)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert "put back as they were" in info.value.message
    assert _stages(workspace, versions) == before  # the old state, not half of the new one
    assert {v: client.get_model_version(versions, v).last_updated_timestamp for v in stamps} == stamps


def test_a_transition_that_cannot_be_undone_says_which_versions(workspace, client, versions, intercept):
    client.transition_model_version_stage(versions, "1", "Production")
    failing = {"/versions/1"}  # archiving version 1 fails, and so does putting version 3 back

    def before(request):
        if request.method == "PUT" and any(request.path.endswith(f"/models/{versions}{v}") for v in failing):
            failing.add("/versions/3")
            return _busy(503)
        return None

    intercept(before=before)
    with pytest.raises(MlflowException) as info:
        client.transition_model_version_stage(versions, "3", "Production", archive_existing_versions=True)
    workspace.set_interceptor(None)
    assert info.value.error_code == "TEMPORARILY_UNAVAILABLE"
    # Version 1's archive never landed (read back: unchanged), so only version 3 is left in its new stage.
    assert "Version 3 of model" in info.value.message and "Run the same call again" in info.value.message
    assert _stages(workspace, versions) == {"1": "Production", "2": "Development", "3": "Production"}


def test_a_registration_whose_model_stamp_fails_is_still_one_version(workspace, client, model_name,
                                                                     sklearn_model_dir, intercept):
    """The version exists before the model's last update is written: that write failing must not make the call
    fail (a retry would register a second version)."""
    client.create_registered_model(model_name)
    intercept(before=lambda r: _busy(503) if _is(r, "PUT", f"/models/{model_name}") else None)
    mv = client.create_model_version(model_name, str(sklearn_model_dir))
    workspace.set_interceptor(None)
    assert [v.version for v in client.search_model_versions(f"name = '{model_name}'")] == [mv.version] == [1]
