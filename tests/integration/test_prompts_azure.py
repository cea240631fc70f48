"""What Azure ML holds for an MLflow prompt, read through Azure ML's own SDK (``azure-ai-ml``'s ``MLClient``): the
version's type and tags, and the template file in its folder; long templates kept in the file and filled back on
every MLflow read; a deleted empty prompt retired, not gone (docs/design.md, *Prompts*)."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import mapping, prompts

pytestmark = pytest.mark.skipif(not prompts.supported(), reason="MLflow without the prompt API (MLflow 3)")

LONG = "Summarise {{document}} for {{audience}}. " + "Be precise, cite the source, keep it short. " * 60
CHAT = [{"role": "system", "content": "Réponds en {{langue}} 😀"}, {"role": "user", "content": "{{question}}"}]


@pytest.fixture(params=["workspace", "registry"])
def target(request, workspace):
    """(MlflowClient on the workspace or the local Azure ML registry, MLClient kwargs for the same target)."""
    if request.param == "workspace":
        return MlflowClient(registry_uri=workspace.registry_uri()), workspace.ml_client_kwargs()
    return (MlflowClient(registry_uri=workspace.azureml_registry_uri()),
            workspace.ml_client_kwargs(registry="local-registry"))


def test_azure_ml_sdk_reads_a_prompt_version(target, model_name, tmp_path):
    from azure.ai.ml import MLClient

    from mlflow_azureml_registry.local.testing import resolve_localhost

    client, kwargs = target
    assert len(LONG) > prompts.INLINE_LIMIT
    client.register_prompt(model_name, LONG, commit_message="long one", tags={"team": "docs"})
    client.register_prompt(model_name, CHAT, response_format={"type": "object"})
    with resolve_localhost():
        ml = MLClient(**kwargs)
        text = ml.models.get(model_name, "1")
        chat = ml.models.get(model_name, "2")
        ml.models.download(model_name, "1", download_path=str(tmp_path / "v1"))
        ml.models.download(model_name, "2", download_path=str(tmp_path / "v2"))
    assert text.type == chat.type == "custom_model"
    assert text.description == "long one"
    # The prompt's marks and user tags; the long template only in the files, named in a property.
    assert text.tags == {"mlflow.prompt.is_prompt": "true", "_mlflow_prompt_type": "text", "team": "docs"}
    assert text.properties[prompts.PROP_FILE_TAGS] == "mlflow.prompt.text"
    assert text.properties[mapping.PROP_SOURCE] == "dummy-source"
    assert chat.tags["mlflow.prompt.text"] == json.dumps(CHAT)  # short: inline too
    assert prompts.PROP_FILE_TAGS not in chat.properties
    (template,) = (tmp_path / "v1").rglob("template.txt")
    assert template.read_text(encoding="utf-8") == LONG
    assert template.parent.name == "prompt"
    details = json.loads((template.parent / "prompt.json").read_text(encoding="utf-8"))
    assert details == {"mlflow.prompt.is_prompt": "true", "_mlflow_prompt_type": "text", "mlflow.prompt.text": LONG}
    (chat_file,) = (tmp_path / "v2").rglob("template.json")
    assert json.loads(chat_file.read_text(encoding="utf-8")) == CHAT
    # MLflow reads the long template where it always does: the version tag.
    assert client.load_prompt(f"prompts:/{model_name}/1", cache_ttl_seconds=0).template == LONG
    assert [v.template for v in client.search_prompt_versions(model_name)] == [CHAT, LONG]


def test_long_values_are_filled_for_every_version_of_a_search(workspace, model_name):
    client = MlflowClient(registry_uri=workspace.registry_uri())
    for n in range(4):
        client.register_prompt(model_name, f"{n} {LONG}")
    found = client.search_prompt_versions(model_name)
    assert [v.template for v in found] == [f"{n} {LONG}" for n in (3, 2, 1, 0)]
    stored = workspace.state.get_version("local-ws", model_name, "1")["properties"]
    assert "mlflow.prompt.text" not in stored["tags"]


def test_deleted_empty_prompt_is_retired_and_revived(workspace, model_name):
    client = MlflowClient(registry_uri=workspace.registry_uri())
    client.register_prompt(model_name, "bye {{x}}", tags={"team": "a"})
    client.set_prompt_alias(model_name, "production", 1)
    with pytest.raises(MlflowException, match="still has undeleted versions") as refused:
        client.delete_prompt(model_name)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    client.delete_prompt_version(model_name, "1")
    client.delete_prompt(model_name)
    container = workspace.state.get_model("local-ws", model_name)["properties"]
    assert set(container["tags"]) - {mapping.LAST_UPDATED_TAG} == {"mlflow.prompt.is_prompt", mapping.RETIRED_TAG}
    assert not container.get("description")
    assert client.get_prompt(model_name) is None
    assert list(client.search_prompts(f"name = '{model_name}'")) == []
    with pytest.raises(MlflowException) as missing:
        client.delete_prompt(model_name)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    revived = client.register_prompt(model_name, "again {{x}}")
    assert revived.version == 2  # Azure ML never reuses a version number
    assert client.get_prompt(model_name).tags.get("team") is None


def test_a_lost_template_file_is_an_error_that_says_so(workspace, model_name, caplog):
    """A long template lives only in ``prompt/prompt.json``. Gone (changed outside MLflow): a read of that version
    says so (``INTERNAL_ERROR``), never answering it without its template; listings log it and go on, so one
    damaged prompt does not break the workspace's searches (MLflow then finds no text in that version)."""
    client = MlflowClient(registry_uri=workspace.registry_uri())
    client.register_prompt(model_name, f"{model_name} {LONG}")
    stored = workspace.state.get_version("local-ws", model_name, "1")["properties"]
    prefix = stored["modelUri"].split("/paths/", 1)[1]
    datastore = workspace.datastore("local-ws")
    container = workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])
    blob = f"{prefix}/{prompts.DETAILS_FILE}"
    kept = container.download_blob(blob).readall()
    container.delete_blob(blob)
    try:
        with pytest.raises(MlflowException, match="prompt/prompt.json, which is missing") as info:
            client.get_prompt_version(model_name, 1)
        assert info.value.error_code == "INTERNAL_ERROR"
        found = client.search_model_versions(f"name = '{model_name}' AND tags.`mlflow.prompt.is_prompt` = 'true'")
        assert [(v.version, "mlflow.prompt.text" in v.tags) for v in found] == [(1, False)]
        assert "prompt/prompt.json, which is missing" in caplog.text
        assert client.search_prompts(f"name = '{model_name}'")[0].name == model_name
    finally:
        container.upload_blob(blob, kept)  # the session's other tests search this workspace
    assert client.get_prompt_version(model_name, 1).template == f"{model_name} {LONG}"


def test_azure_ml_sdk_lists_containers_without_their_tags(target, model_name):
    """``MLClient.models.list()`` (no name) shows every container, a prompt's included, with no tags and no
    description: azure-ai-ml builds each item with ``Model._from_container_rest_object``, which keeps only the name,
    id, creation context and latest version, though the REST answer carries ``properties.tags`` and
    ``properties.description`` (spec ``ResourceBase``; the same list read by the plugin's gateway). So a prompt's
    prompt-level tags (and a model's aliases) are not ours to fix there: SDK users read the version's tags
    (``models.get``, ``models.list(name=...)``), which carry the tags ``register_prompt`` was given
    (FIDELITY.md, *Model containers*). If this fails on ``sdk.tags``, the SDK maps them now: update that row."""
    from azure.ai.ml import MLClient

    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.local.testing import resolve_localhost

    client, kwargs = target
    client.register_prompt(model_name, "Hi {{x}}", commit_message="first", tags={"team": "docs"})
    gateway = session.gateway(client._get_registry_client().store.workspace)
    raw = next(c for c in gateway.models.list_containers(list_view_type="ActiveOnly") if c["name"] == model_name)
    assert raw["properties"]["tags"]["team"] == "docs"
    assert raw["properties"]["tags"]["mlflow.prompt.is_prompt"] == "true"
    assert raw["properties"]["description"] == "first"
    with resolve_localhost():
        ml = MLClient(**kwargs)
        # A registry's container list needs the view type's value (FIDELITY.md, *Registries*).
        sdk = next(m for m in ml.models.list(list_view_type="ActiveOnly") if m.name == model_name)
        (version,) = ml.models.list(name=model_name)
    assert (sdk.tags, sdk.description, sdk.latest_version) == ({}, None, "1")
    assert version.tags["team"] == "docs" and version.tags["mlflow.prompt.is_prompt"] == "true"
    assert version.description == "first"
