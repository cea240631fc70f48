"""The MlflowClient registry surface on Azure ML model assets, cross-checked with Azure ML's own SDK."""

from __future__ import annotations

import pytest
from mlflow.entities.model_registry.model_version_tag import ModelVersionTag
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import search_filters

WRITES = {"PUT", "POST", "DELETE", "PATCH"}
LAST_UPDATED = "mlflow.lastUpdated"


@pytest.fixture
def registered(client, model_name, sklearn_model_dir):
    """A model with three versions (same files: uploaded once)."""
    client.create_registered_model(model_name, tags={"team": "risk"}, description="first")
    for _ in range(3):
        client.create_model_version(model_name, str(sklearn_model_dir))
    return model_name


@pytest.fixture
def ml_client(workspace):
    from azure.ai.ml import MLClient

    return MLClient(**workspace.ml_client_kwargs())


def _since(workspace, mark):
    return workspace.requests[mark:]


def test_rename_and_delete_model_send_no_write(workspace, client, registered):
    for call in (
        lambda: client.rename_registered_model(registered, registered + "-new"),
        lambda: client.delete_registered_model(registered),
    ):
        mark = len(workspace.requests)
        with pytest.raises(MlflowException) as info:
            call()
        assert info.value.error_code == "NOT_IMPLEMENTED"
        assert "cannot be" in info.value.message and "instead" in info.value.message
        assert not [r for r in _since(workspace, mark) if r["method"] in WRITES]
    assert client.get_registered_model(registered).name == registered  # untouched


def test_registered_model_description_and_tags(workspace, client, registered, ml_client):
    client.update_registered_model(registered, description="second")
    client.set_registered_model_tag(registered, "owner", "alice")
    client.delete_registered_model_tag(registered, "team")
    model = client.get_registered_model(registered)
    assert (model.description, model.tags) == ("second", {"owner": "alice"})
    container = workspace.state.get_model("local-ws", registered)["properties"]
    # What Azure ML users see: the user's tags, and MLflow's last update (tag writes do not move it in MLflow,
    # Azure ML's lastModifiedAt does, so the plugin keeps MLflow's there).
    assert container["description"] == "second"
    assert container["tags"] == {"owner": "alice", LAST_UPDATED: str(model.last_updated_timestamp)}


def test_version_description_tags_and_delete(workspace, client, registered, ml_client):
    client.update_model_version(registered, "2", description="v2 notes")
    client.set_model_version_tag(registered, "2", "validated", "yes")
    client.set_model_version_tag(registered, "2", "drop", "me")
    client.delete_model_version_tag(registered, "2", "drop")
    mv = client.get_model_version(registered, "2")
    assert (mv.description, mv.tags) == ("v2 notes", {"validated": "yes"})
    asset = ml_client.models.get(registered, version="2")
    stamp = str(mv.last_updated_timestamp)  # a tag write is no update in MLflow: the version keeps its time
    assert (asset.description, asset.tags) == ("v2 notes", {"validated": "yes", LAST_UPDATED: stamp})
    client.delete_model_version(registered, "3")
    with pytest.raises(MlflowException) as info:
        client.get_model_version(registered, "3")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # Version numbers are never reused.
    assert (
        client.create_model_version(registered, client.get_model_version_download_uri(registered, "1")).version == 4
    )


def test_stage_transitions_are_what_azure_ml_shows(workspace, client, registered, ml_client):
    mv = client.transition_model_version_stage(registered, "1", "staging")
    assert mv.current_stage == "Staging"
    assert ml_client.models.get(registered, version="1").stage == "Staging"
    client.transition_model_version_stage(registered, "2", "Production")
    client.transition_model_version_stage(registered, "3", "Production", archive_existing_versions=True)
    stages = {v: client.get_model_version(registered, v).current_stage for v in ("1", "2", "3")}
    assert stages == {"1": "Staging", "2": "Archived", "3": "Production"}
    assert ml_client.models.get(registered, version="2").stage == "Archived"
    assert [m.version for m in ml_client.models.list(registered, stage="Production")] == ["3"]
    client.transition_model_version_stage(registered, "3", "None")
    assert ml_client.models.get(registered, version="3").stage == "Development"
    assert client.get_model_version(registered, "3").current_stage == "None"


def test_stage_values_set_by_azure_ml_users_read_back(workspace, client, registered, ml_client):
    for version, azure_stage in (("1", "QA"), ("2", "production")):
        model = ml_client.models.get(registered, version=version)
        model.stage = azure_stage
        ml_client.models.create_or_update(model)
    assert client.get_model_version(registered, "1").current_stage == "None"
    assert client.get_model_version(registered, "2").current_stage == "Production"


def test_archive_existing_requires_active_stage(client, registered):
    with pytest.raises(MlflowException) as info:
        client.transition_model_version_stage(registered, "1", "Archived", archive_existing_versions=True)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_latest_versions_and_stage_uris(workspace, client, registered, sklearn_model_dir, iris):
    import mlflow

    client.transition_model_version_stage(registered, "1", "Staging")
    client.transition_model_version_stage(registered, "2", "Production")
    latest = {mv.current_stage: mv.version for mv in client.get_latest_versions(registered)}
    assert latest == {"None": 3, "Staging": 1, "Production": 2}
    assert [mv.version for mv in client.get_latest_versions(registered, stages=["production"])] == [2]
    client.set_registered_model_alias(registered, "champion", "2")
    model = client.get_registered_model(registered)
    assert {mv.current_stage: mv.version for mv in model.latest_versions} == latest
    # as MLflow's SQL registry: a model's latest_versions carry no aliases; get_latest_versions' do from MLflow 2.21
    assert [mv.aliases for mv in model.latest_versions] == [[], [], []]
    production = client.get_latest_versions(registered, stages=["Production"])[0].aliases
    assert production == (["champion"] if search_filters.prompts_known() else [])
    for uri in (f"models:/{registered}/Production", f"models:/{registered}/latest", f"models:/{registered}/staging"):
        assert len(mlflow.pyfunc.load_model(uri).predict(iris.head(2))) == 2


def test_azure_archived_versions_stay_visible(workspace, client, registered, ml_client):
    ml_client.models.archive(registered, version="2")
    assert client.get_model_version(registered, "2").version == 2
    assert {mv.version for mv in client.search_model_versions(f"name = '{registered}'")} == {1, 2, 3}


def test_aliases(workspace, client, registered, iris):
    import mlflow

    client.set_registered_model_alias(registered, "champion", "2")
    client.set_registered_model_alias(registered, "challenger", "3")
    assert client.get_model_version_by_alias(registered, "champion").version == 2
    assert client.get_registered_model(registered).aliases == {"champion": 2, "challenger": 3}
    assert client.get_model_version(registered, "2").aliases == ["champion"]
    assert len(mlflow.pyfunc.load_model(f"models:/{registered}@champion").predict(iris.head(2))) == 2
    client.set_registered_model_alias(registered, "champion", "3")  # moves
    assert sorted(client.get_model_version(registered, "3").aliases) == ["challenger", "champion"]
    client.delete_registered_model_alias(registered, "challenger")
    assert client.get_registered_model(registered).aliases == {"champion": 3}
    assert client.get_registered_model(registered).tags == {"team": "risk"}  # aliases never leak into tags
    client.delete_model_version(registered, "3")  # the alias goes with its version
    with pytest.raises(MlflowException) as info:
        client.get_model_version_by_alias(registered, "champion")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"  # MLflow's SQL registry's code for a missing alias
    assert client.get_registered_model(registered).aliases == {}


def test_alias_to_missing_version_is_refused(client, registered):
    with pytest.raises(MlflowException) as info:
        client.set_registered_model_alias(registered, "champion", "99")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_latest_alias_follows_the_installed_mlflow(client, registered):
    """MLflow 3's SQL store answers ``@latest`` with the highest version; older MLflow refuses the name."""
    from mlflow.utils import validation as mlflow_validation

    client.transition_model_version_stage(registered, "2", "Production")
    if hasattr(mlflow_validation, "_REGISTERED_MODEL_ALIAS_LATEST"):
        assert client.get_model_version_by_alias(registered, "latest").version == 3
        assert client.get_model_version_by_alias(registered, "LATEST").version == 3
    else:
        with pytest.raises(MlflowException) as info:
            client.get_model_version_by_alias(registered, "latest")
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as info:
        client.set_registered_model_alias(registered, "latest", "1")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_reserved_alias_tags_cannot_be_set_as_tags(client, registered):
    with pytest.raises(MlflowException) as info:
        client.set_registered_model_tag(registered, "mlflow.alias.champion", "1")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_copy_model_version_within_workspace_references_same_files(workspace, client, registered, model_name):
    src = client.get_model_version(registered, "2")
    copy = client.copy_model_version(f"models:/{registered}/2", registered + "-copy")
    assert copy.version == 1 and copy.source == f"models:/{registered}/2"
    original = workspace.state.get_version("local-ws", registered, "2")["properties"]
    copied = workspace.state.get_version("local-ws", registered + "-copy", "1")["properties"]
    assert copied["modelUri"] == original["modelUri"] and copied["modelType"] == original["modelType"]
    assert src.run_id == copy.run_id


def test_cross_workspace_create_from_other_workspace_version(workspace, client, registered, iris):
    import mlflow

    source_uri = client.get_model_version_download_uri(registered, "1")
    other = mlflow.MlflowClient(registry_uri=workspace.registry_uri("local-ws-2"))
    other.create_registered_model(registered)
    mv = other.create_model_version(registered, source_uri)
    stored = workspace.state.get_version("local-ws-2", registered, str(mv.version))["properties"]
    assert "/workspaces/local-ws-2/datastores/" in stored["modelUri"]
    with pytest.raises(MlflowException):
        client.get_model_version(registered + "-absent", "1")
    files = other.get_model_version_download_uri(registered, mv.version)
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    assert {f.path for f in get_artifact_repository(files).list_artifacts()} == {
        f.path for f in get_artifact_repository(source_uri).list_artifacts()
    }


def test_search_registered_models_grammar(client, registered, model_name):
    names = [m.name for m in client.search_registered_models(f"name LIKE '{registered[:6]}%'")]
    assert names == [registered]
    assert [m.name for m in client.search_registered_models(f"name = '{registered}'")] == [registered]
    assert client.search_registered_models(f"name ILIKE '{registered.upper()}'")[0].name == registered
    assert [m.name for m in client.search_registered_models("tags.team = 'risk'") if m.name == registered] == [
        registered
    ]
    with pytest.raises(MlflowException) as info:
        client.search_registered_models("name = 'a' OR name = 'b'")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_model_versions(client, registered):
    client.set_model_version_tag(registered, "2", "k", "v")
    versions = client.search_model_versions(f"name = '{registered}'")
    assert sorted(mv.version for mv in versions) == [1, 2, 3]
    tagged = client.search_model_versions(f"name = '{registered}' AND tags.k = 'v'")
    assert [mv.version for mv in tagged] == [2]
    newest = client.search_model_versions(f"name = '{registered}'", order_by=["version_number DESC"], max_results=2)
    assert [mv.version for mv in newest] == [3, 2] and newest.token


def test_tag_validation(client, registered):
    with pytest.raises(MlflowException) as info:
        client.set_model_version_tag(registered, "1", "", "x")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    from mlflow_azureml_registry.store import AzureMLRegistryStore

    store = client._get_registry_client().store
    assert isinstance(store, AzureMLRegistryStore)
    with pytest.raises(MlflowException):
        store.set_model_version_tag(registered, "1", ModelVersionTag("k" * 300, "v"))


def test_prompt_tag_is_an_ordinary_tag_without_mlflow_prompts(client, model_name):
    """An MLflow without the prompt API (2.16) treats ``mlflow.prompt.is_prompt`` as an ordinary tag, as its SQL
    registry does: the model is created, read and found. (With the API: tests/conformance/test_prompts.py.)"""
    from mlflow_azureml_registry import prompts

    if prompts.supported():
        pytest.skip("this MLflow has the prompt API: prompts are covered by tests/conformance/test_prompts.py")
    client.create_registered_model(model_name, tags={"mlflow.prompt.is_prompt": "true"})
    assert client.get_registered_model(model_name).tags == {"mlflow.prompt.is_prompt": "true"}
    assert [m.name for m in client.search_registered_models(f"name = '{model_name}'")] == [model_name]


def test_version_number_filters_compare_numerically(client, model_name, sklearn_model_dir):
    client.create_registered_model(model_name)
    for _ in range(11):
        client.create_model_version(model_name, str(sklearn_model_dir))
    found = client.search_model_versions(f"name = '{model_name}' AND version_number > 9")
    assert sorted(mv.version for mv in found) == [10, 11]
    ordered = client.search_model_versions(f"name = '{model_name}'", order_by=["version_number ASC"])
    assert [mv.version for mv in ordered][-3:] == [9, 10, 11]
    assert all(type(mv.version) is int for mv in ordered)  # as MLflow's SQL registry, in process
