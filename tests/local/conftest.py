"""Fixtures for the local-workspace tests: one LocalWorkspace per session, raw ARM calls, guards.

No test may send traffic off loopback: every test runs inside ``loopback_only()`` (connects to a
non-loopback address raise), and the managed-identity endpoints point at a closed loopback port.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from mlflow_azureml_registry.local import LocalWorkspace
from mlflow_azureml_registry.local.testing import loopback_only

from . import spec

_IDENTITY_ENV = {  # azure-identity's managed-identity probes go to a dead loopback port, never to IMDS
    "IDENTITY_ENDPOINT": "http://127.0.0.1:9/token",
    "IDENTITY_HEADER": "local-tests",
    "MSI_ENDPOINT": "http://127.0.0.1:9/token",
}


@pytest.fixture(scope="session", autouse=True)
def _identity_endpoints_on_loopback() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in _IDENTITY_ENV}
    os.environ.update(_IDENTITY_ENV)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def _no_off_loopback_traffic() -> Iterator[None]:
    with loopback_only() as refused:
        yield
    assert not refused, f"off-loopback connections attempted: {refused}"


@pytest.fixture(scope="session")
def ws() -> Iterator[LocalWorkspace]:
    with loopback_only(), LocalWorkspace() as workspace:
        yield workspace


class Arm:
    """Raw ARM calls against the local workspace (requests, its CA bundle, no proxies)."""

    def __init__(
        self, ws: LocalWorkspace, workspace: str = "local-ws", api_version: str = "2025-12-01"
    ) -> None:
        self.ws, self.workspace, self.api_version = ws, workspace, api_version
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ws.ca_bundle
        self.session.headers["Authorization"] = f"Bearer {ws.token}"

    def url(self, tail: str, workspace: str | None = None) -> str:
        ws = workspace or self.workspace
        return (
            f"{self.ws.resource_manager_url}/subscriptions/{self.ws.subscription_id}/resourceGroups/"
            f"{self.ws.resource_group}/providers/Microsoft.MachineLearningServices/workspaces/{ws}/{tail}"
        )

    def call(
        self,
        method: str,
        tail: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        workspace: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        params = {"api-version": self.api_version, **(params or {})}
        response = self.session.request(
            method, self.url(tail, workspace), params=params, json=json, timeout=30, **kwargs
        )
        check_common(response)
        return response

    def get(self, tail: str, **kw: Any) -> requests.Response:
        return self.call("GET", tail, **kw)

    def put(self, tail: str, body: Any, **kw: Any) -> requests.Response:
        return self.call("PUT", tail, json=body, **kw)

    def delete(self, tail: str, **kw: Any) -> requests.Response:
        return self.call("DELETE", tail, **kw)

    def post(self, tail: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.call("POST", tail, json=body, **kw)

    def follow(self, url: str) -> requests.Response:
        response = self.session.get(url, timeout=30)
        check_common(response)
        return response


def check_common(response: requests.Response) -> None:
    """What every answer carries: a request id; errors also the ARM error shape and headers."""
    uuid.UUID(response.headers["x-ms-request-id"])
    if response.status_code >= 400:
        assert response.headers["x-ms-response-type"] == "error"
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        spec.assert_valid("ErrorResponse", response.json())
        assert {"code", "message"} <= set(response.json()["error"])


@pytest.fixture
def arm(ws: LocalWorkspace) -> Arm:
    return Arm(ws)


_counter = itertools.count()


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A model name unique to the test, since the workspace is shared by the session."""
    return f"m{next(_counter)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def small_pages(ws: LocalWorkspace) -> Iterator[int]:
    previous, ws.state.page_size = ws.state.page_size, 2
    try:
        yield 2
    finally:
        ws.state.page_size = previous


def model_uri(ws: LocalWorkspace, name: str, workspace: str = "local-ws", rg: str = "resourceGroups") -> str:
    return (
        f"azureml://subscriptions/{ws.subscription_id}/{rg}/{ws.resource_group}/workspaces/{workspace}"
        f"/datastores/workspaceblobstore/paths/LocalUpload/{uuid.uuid4().hex}/{name}"
    )
