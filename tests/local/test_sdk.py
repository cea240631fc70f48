"""The real azure-ai-ml ``MLClient`` against the local workspace: create (uploading to Azurite), get,
list, latest label, stage filter, archive/restore, container archive, download, version delete.

The SDK builds blob URLs as ``https://<account>.blob.core.localhost:<port>``, so these tests resolve
``*.localhost`` in-process. Every request body the SDK sends and every answer it gets are checked
against the vendored spec through the server's interceptor seam.
"""

from __future__ import annotations

import filecmp
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from mlflow_azureml_registry.local.handlers import Request, Response
from mlflow_azureml_registry.local.testing import resolve_localhost

from . import spec

_SCHEMAS = {  # operation -> (request body definition, response body definition)
    "ModelVersions_CreateOrUpdate": ("ModelVersionResource", "ModelVersionResource"),
    "ModelVersions_Get": (None, "ModelVersionResource"),
    "ModelVersions_List": (None, "ModelVersionResourceArmPaginatedResult"),
    "ModelContainers_CreateOrUpdate": ("ModelContainerResource", "ModelContainerResource"),
    "ModelContainers_Get": (None, "ModelContainerResource"),
    "ModelContainers_List": (None, "ModelContainerResourceArmPaginatedResult"),
    "Datastores_Get": (None, "DatastoreResource"),
    "Datastores_List": (None, "DatastoreResourceArmPaginatedResult"),
    "Datastores_ListSecrets": (None, "SasDatastoreSecrets"),
}


class SpecChecker:
    """Interceptor that validates the SDK's requests and the emulator's answers against the spec."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.problems: list[str] = []
        self.bodies: list[tuple[str, Any]] = []

    def before(self, request: Request) -> Optional[Response]:
        return None

    def after(self, request: Request, response: Response) -> bool:
        operation = next(
            (
                r.operation
                for r in self.router
                if r.method == request.method and r.pattern.match(request.path)
            ),
            None,
        )
        request_def, response_def = _SCHEMAS.get(operation, (None, None))
        if request_def and request.body:
            body = json.loads(request.body)
            self.bodies.append((operation, body))
            self.problems += [f"request {operation}: {e}" for e in spec.errors(request_def, body)]
        if response.status >= 400:
            self.problems += [f"error {operation}: {e}" for e in spec.errors("ErrorResponse", response.body)]
        elif response_def and response.body is not None:
            found = spec.errors(response_def, spec.strip_recorded_extras(response.body))
            self.problems += [f"response {operation}: {e}" for e in found]
        return True


@pytest.fixture(scope="module")
def ml_client(ws) -> Iterator[Any]:
    from azure.ai.ml import MLClient

    from mlflow_azureml_registry.local.routing import ROUTES

    checker = SpecChecker(ROUTES)
    ws.set_interceptor(checker)
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    os.environ.update({k: ws.ca_bundle for k in saved})  # the SDK's requests sessions trust the env bundle
    try:
        with resolve_localhost():
            client = MLClient(**ws.ml_client_kwargs("local-ws"))
            client.spec_checker = checker
            yield client
    finally:
        ws.set_interceptor(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert not checker.problems, checker.problems


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "my_model"
    (folder / "sub").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n")
    (folder / "model.bin").write_bytes(uuid.uuid4().bytes * 1000)
    (folder / "sub" / "extra.txt").write_text("extra")
    return folder


def test_create_uploads_to_azurite_and_get_list_latest(
    ws, ml_client, model_dir: Path, model_name: str
) -> None:
    from azure.ai.ml.entities import Model

    with resolve_localhost():
        v1 = ml_client.models.create_or_update(
            Model(
                name=model_name,
                path=str(model_dir),
                type="custom_model",
                description="first",
                tags={"a": "b"},
            )
        )
        assert v1.version == "1"
        v2 = ml_client.models.create_or_update(
            Model(
                name=model_name,
                path=str(model_dir),
                type="mlflow_model",
                stage="Production",
                flavors={"python_function": {"loader_module": "m"}},
            )
        )
        assert v2.version == "2"  # from the container's nextVersion
        got = ml_client.models.get(model_name, "1")
        assert (got.description, got.tags, got.stage) == ("first", {"a": "b"}, "Development")
        assert "/datastores/workspaceblobstore/paths/LocalUpload/" in got.path
        assert ml_client.models.get(model_name, label="latest").version == "2"
        assert sorted(m.version for m in ml_client.models.list(model_name)) == ["1", "2"]
        assert [m.version for m in ml_client.models.list(model_name, stage="Production")] == ["2"]
        assert model_name in {m.name for m in ml_client.models.list()}
        assert ml_client.models.get(model_name, "2").flavors == {"python_function": {"loader_module": "m"}}
    # the files are in the workspace's container, under the SDK's content-addressed folder
    props = ws.datastore("local-ws")
    container = ws.blob_service(props["accountName"]).get_container_client(props["containerName"])
    prefix = got.path.split("/paths/", 1)[1]
    names = sorted(b.name for b in container.list_blobs(name_starts_with=prefix))
    assert names == [f"{prefix}/MLmodel", f"{prefix}/model.bin", f"{prefix}/sub/extra.txt"]
    sent = [body for op, body in ml_client.spec_checker.bodies if op == "ModelVersions_CreateOrUpdate"]
    assert sent and all("/resourcegroups/" in b["properties"]["modelUri"] for b in sent)  # SDK lower-cases
    assert "/resourceGroups/" in got.path  # the service normalises it (recorded)


def test_archive_restore_and_container_archive(ml_client, model_dir: Path, model_name: str) -> None:
    from azure.ai.ml.constants import ListViewType
    from azure.ai.ml.entities import Model

    with resolve_localhost():
        for _ in range(2):
            ml_client.models.create_or_update(Model(name=model_name, path=str(model_dir)))
        ml_client.models.archive(model_name, "2")
        assert ml_client.models.get(model_name, "2").stage == "Development"  # archive drops stage: kept
        assert [m.version for m in ml_client.models.list(model_name)] == ["1"]
        assert ml_client.models.get(model_name, label="latest").version == "1"  # archived is never latest
        archived = ml_client.models.list(model_name, list_view_type=ListViewType.ARCHIVED_ONLY)
        assert [m.version for m in archived] == ["2"]
        ml_client.models.restore(model_name, "2")
        assert ml_client.models.get(model_name, label="latest").version == "2"
        ml_client.models.archive(model_name)
        assert model_name not in {m.name for m in ml_client.models.list()}
        assert model_name in {
            m.name for m in ml_client.models.list(list_view_type=ListViewType.ARCHIVED_ONLY)
        }
        ml_client.models.restore(model_name)
        assert model_name in {m.name for m in ml_client.models.list()}


def test_download_matches_the_uploaded_bytes(
    ml_client, model_dir: Path, model_name: str, tmp_path: Path
) -> None:
    from azure.ai.ml.entities import Model

    with resolve_localhost():
        ml_client.models.create_or_update(Model(name=model_name, path=str(model_dir)))
        ml_client.models.download(model_name, "1", download_path=str(tmp_path / "out"))
    downloaded = tmp_path / "out" / model_name / model_dir.name
    comparison = filecmp.dircmp(model_dir, downloaded)
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files
    assert filecmp.cmp(model_dir / "sub" / "extra.txt", downloaded / "sub" / "extra.txt", shallow=False)


def test_version_delete_through_the_generated_client(ws, ml_client, model_dir: Path, model_name: str) -> None:
    from azure.ai.ml.entities import Model
    from azure.core.exceptions import ResourceNotFoundError

    with resolve_localhost():
        ml_client.models.create_or_update(Model(name=model_name, path=str(model_dir), version="7"))
        ml_client.models._model_versions_operation.delete(
            resource_group_name=ws.resource_group, workspace_name="local-ws", name=model_name, version="7"
        )
        with pytest.raises(ResourceNotFoundError):
            ml_client.models.get(model_name, "7")
        next_version = ml_client.models.create_or_update(Model(name=model_name, path=str(model_dir))).version
    assert next_version == "8"  # nextVersion survives the delete


def test_unknown_model_raises_resource_not_found(ml_client, model_name: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError):
        ml_client.models.get(model_name, "1")
    with pytest.raises(ResourceNotFoundError):
        list(ml_client.models.list(model_name))


def test_changed_asset_path_is_the_sdk_asset_path_error(
    ws, ml_client, model_dir: Path, model_name: str, tmp_path: Path
) -> None:
    from azure.ai.ml.entities import Model

    other = tmp_path / "other"
    other.mkdir()
    (other / "f.txt").write_text("different content")
    with resolve_localhost():
        ml_client.models.create_or_update(Model(name=model_name, path=str(model_dir), version="1"))
        with pytest.raises(Exception) as raised:
            ml_client.models.create_or_update(Model(name=model_name, path=str(other), version="1"))
    assert "Asset paths cannot be updated" in str(raised.value) or type(raised.value).__name__ == (
        "AssetPathException"
    )


def test_other_workspace_and_forbidden_workspace(ws, ml_client, model_dir: Path, model_name: str) -> None:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Model
    from azure.core.exceptions import HttpResponseError

    with resolve_localhost():
        second = MLClient(**ws.ml_client_kwargs("local-ws-2"))
        created = second.models.create_or_update(Model(name=model_name, path=str(model_dir)))
        assert "/workspaces/local-ws-2/" in created.path
        props = ws.datastore("local-ws-2")
        container = ws.blob_service(props["accountName"]).get_container_client(props["containerName"])
        assert any(True for _ in container.list_blobs(name_starts_with="LocalUpload/"))
        forbidden = MLClient(**ws.ml_client_kwargs("forbidden-ws"))
        with pytest.raises(HttpResponseError) as raised:
            forbidden.models.get(model_name, "1")
    assert raised.value.status_code == 403
