"""The store overrides every AbstractStore method, and refuses what Azure ML cannot do before any I/O."""

import inspect
import sys

import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.model_registry.abstract_store import AbstractStore

from mlflow_azureml_registry import prompts, session
from mlflow_azureml_registry.artifacts import AzureMLArtifactRepository
from mlflow_azureml_registry.store import AzureMLRegistryStore
from tests import processes

URI = "azureml-registry://subscriptions/0000/resourceGroups/rg/workspaces/ws"


def _public_and_contract_methods(cls):
    return {
        name
        for name, member in inspect.getmembers(cls, predicate=inspect.isfunction)
        if not name.startswith("__")
        and name not in {"_await_model_version_creation_impl", "_parse_experiment_id_filter"}
        # MLflow 3's prompt methods are inherited on purpose: they run on the store's model methods (prompts.py)
        and "prompt" not in name
    }


def test_every_abstract_store_method_is_overridden():
    missing = [
        name
        for name in _public_and_contract_methods(AbstractStore)
        if getattr(AzureMLRegistryStore, name) is getattr(AbstractStore, name)
    ]
    assert missing == []


def test_create_model_version_names_local_model_path_explicitly():
    # MLflow's client passes local_model_path only when the store's signature names it.
    params = inspect.signature(AzureMLRegistryStore.create_model_version).parameters
    assert "local_model_path" in params and "model_id" in params


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda s: s.rename_registered_model("m", "n"), "cannot be renamed"),
        pytest.param(lambda s: s.delete_registered_model("m"), "cannot be deleted", marks=pytest.mark.skipif(
            prompts.supported(), reason="with MLflow's prompt API, deleting a name reads it first: an empty prompt "
            "is retired, a model refused (tests/conformance/test_prompts.py)")),
        (lambda s: s.create_webhook("w", "https://x", []), "webhooks are not supported"),
    ],
)
def test_unsupported_operations_refused_before_any_io(call, expected):
    session.reset()
    store = AzureMLRegistryStore(URI)
    with pytest.raises(MlflowException, match=expected) as info:
        call(store)
    assert info.value.error_code == "NOT_IMPLEMENTED"
    assert session._gateways == {}  # no credential, no HTTP pipeline, no request


def test_webhook_reads_answer_as_an_empty_registry_before_any_io():
    """MLflow's server lists an event's webhooks after every registry write: none, quietly."""
    webhook = pytest.importorskip("mlflow.entities.webhook", reason="MLflow 3 webhooks")

    session.reset()
    store = AzureMLRegistryStore(URI)
    event = webhook.WebhookEvent(webhook.WebhookEntity.MODEL_VERSION, webhook.WebhookAction.CREATED)
    for page in (store.list_webhooks(), store.list_webhooks(max_results=5, page_token=None),
                 store.list_webhooks_by_event(event, max_results=100, page_token=None)):
        assert list(page) == [] and page.token is None
    for call in (store.get_webhook, store.delete_webhook, store.update_webhook, store.test_webhook):
        with pytest.raises(MlflowException, match="Webhook with ID w1 not found") as info:
            call("w1")
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert "webhooks are not supported" in info.value.message
    assert session._gateways == {}


def test_rename_and_delete_messages_say_what_to_do_instead():
    store = AzureMLRegistryStore(URI)
    with pytest.raises(MlflowException) as info:
        store.rename_registered_model("old", "new")
    assert "copy_model_version" in info.value.message and "'new'" in info.value.message
    if prompts.supported():  # the name is read first (an empty prompt is retired); a model gets this message
        from mlflow_azureml_registry.unsupported import DELETE_MODEL_MESSAGE

        assert "delete_model_version('old'" in DELETE_MODEL_MESSAGE.format(name="old")
        return
    with pytest.raises(MlflowException) as info:
        store.delete_registered_model("old")
    assert "delete_model_version('old'" in info.value.message


def test_bad_registry_uri_is_invalid_parameter():
    with pytest.raises(MlflowException) as info:
        AzureMLRegistryStore("azureml-registry://nope")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "workspaces/<workspace>" in info.value.message


def test_bad_artifact_uri_is_invalid_parameter():
    with pytest.raises(MlflowException) as info:
        AzureMLArtifactRepository(URI + "/models/x")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.create_registered_model("bad name"),
        lambda s: s.create_registered_model("-starts-with-dash"),
        lambda s: s.create_registered_model("x" * 256),
        lambda s: s.get_registered_model("a/b"),
        lambda s: s.get_model_version("m", "one"),
        lambda s: s.get_model_version("m", "1.5"),
        lambda s: s.transition_model_version_stage("m", "1", "Development", False),
        lambda s: s.set_registered_model_alias("m", "latest", "1"),
        lambda s: s.set_registered_model_alias("m", "bad alias", "1"),
    ],
)
def test_invalid_input_is_refused_before_any_io(call):
    session.reset()
    store = AzureMLRegistryStore(URI)
    with pytest.raises(MlflowException) as info:
        call(store)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert session._gateways == {}


def test_model_name_error_quotes_azure_rule():
    with pytest.raises(MlflowException, match=r"\^\[a-zA-Z0-9\]\[a-zA-Z0-9\\-_\]\{0,254\}\$"):
        AzureMLRegistryStore(URI).create_registered_model("bad name")


def test_import_mlflow_loads_no_azure_module_and_only_the_entry_point_module():
    code = (
        "import sys, mlflow\n"
        "from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository\n"
        "print(sorted(m for m in sys.modules if m.startswith(('azure', 'mlflow_azureml_registry'))))\n"
    )
    out = processes.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.strip() == "['mlflow_azureml_registry', 'mlflow_azureml_registry.entrypoints']"
