"""The store and artifact repository on an Azure ML registry of the local workspace, and promotion between
workspaces and registries (issue #19). Azure ML's view is read back with the real azure-ai-ml ``MLClient``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.entities.model_registry import ModelVersionTag
from mlflow.exceptions import MlflowException

from tests import processes
from tests.conftest import files_of


@pytest.fixture
def registry_uri(workspace) -> str:
    return workspace.azureml_registry_uri()


@pytest.fixture
def reg(workspace, registry_uri):
    import mlflow

    return mlflow.MlflowClient(registry_uri=registry_uri)


def test_registry_uri_forms_reach_one_registry(workspace, registry_uri, model_name):
    import mlflow

    long_form = mlflow.MlflowClient(registry_uri=registry_uri)
    short_form = mlflow.MlflowClient(registry_uri="azureml-registry://registries/local-registry")
    long_form.create_registered_model(model_name, description="d")
    assert short_form.get_registered_model(model_name).description == "d"


def test_registry_surface(reg, sklearn_model_dir, model_name, tmp_path):
    reg.create_registered_model(model_name, tags={"team": "risk"}, description="credit")
    mv1 = reg.create_model_version(model_name, str(sklearn_model_dir), tags={"k": "v"}, description="first")
    mv2 = reg.create_model_version(model_name, str(sklearn_model_dir))
    assert (mv1.version, mv2.version) == (1, 2)
    assert mv1.tags == {"k": "v"} and mv1.description == "first" and mv1.status == "READY"

    reg.set_model_version_tag(model_name, "1", "stage-note", "x+y")
    reg.delete_model_version_tag(model_name, "1", "k")
    reg.update_model_version(model_name, "1", "new words")
    got = reg.get_model_version(model_name, "1")
    assert got.tags == {"stage-note": "x+y"} and got.description == "new words"

    reg.transition_model_version_stage(model_name, "1", "Staging")
    reg.transition_model_version_stage(model_name, "2", "Staging", archive_existing_versions=True)
    assert reg.get_model_version(model_name, "1").current_stage == "Archived"
    assert reg.get_model_version(model_name, "2").current_stage == "Staging"
    assert [mv.version for mv in reg.get_latest_versions(model_name, ["Staging"])] == [2]

    reg.set_registered_model_alias(model_name, "champion", "2")
    assert reg.get_model_version_by_alias(model_name, "champion").version == 2
    assert reg.get_registered_model(model_name).aliases == {"champion": 2}
    found = reg.search_model_versions(f"name = '{model_name}'")
    assert sorted(mv.version for mv in found) == [1, 2]
    assert [m.name for m in reg.search_registered_models(f"name = '{model_name}'")] == [model_name]

    uri = reg.get_model_version_download_uri(model_name, "2")
    assert uri.startswith("azureml-registry://") and "/registries/local-registry/models/" in uri
    import mlflow

    assert files_of(Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "a")))) == files_of(
        sklearn_model_dir
    )
    mlflow.set_registry_uri(reg._registry_uri)
    try:
        out = mlflow.artifacts.download_artifacts(f"models:/{model_name}@champion", dst_path=str(tmp_path / "b"))
    finally:
        mlflow.set_registry_uri(os.environ["MLFLOW_REGISTRY_URI"])
    loaded = files_of(Path(out))
    loaded.pop("registered_model_meta", None)  # MLflow 3 writes it into a models:/ download
    assert loaded == files_of(sklearn_model_dir)

    reg.delete_model_version(model_name, "1")
    with pytest.raises(MlflowException) as caught:
        reg.get_model_version(model_name, "1")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # An unknown model is not found, though the registry lists its versions as empty.
    with pytest.raises(MlflowException) as caught:
        reg.get_latest_versions("no-such-model-x")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_azure_ml_sdk_reads_what_the_plugin_wrote(workspace, reg, sklearn_model_dir, model_name, tmp_path):
    from azure.ai.ml import MLClient

    from mlflow_azureml_registry.local.testing import resolve_localhost

    reg.create_registered_model(model_name)
    reg.create_model_version(model_name, str(sklearn_model_dir), tags={"k": "v"})
    reg.transition_model_version_stage(model_name, "1", "Production")
    with resolve_localhost():
        ml = MLClient(**workspace.ml_client_kwargs(registry="local-registry"))
        model = ml.models.get(model_name, "1")
        assert model.tags["k"] == "v" and model.tags["mlflow.stage"] == "Production"
        assert model.type == "mlflow_model"
        ml.models.download(model_name, "1", download_path=str(tmp_path))
    downloaded = [p for p in tmp_path.rglob("MLmodel")]
    assert len(downloaded) == 1
    assert files_of(downloaded[0].parent) == files_of(sklearn_model_dir)


def _load_in_fresh_process(registry_uri: str, model_uri: str, env: dict) -> str:
    code = textwrap.dedent(
        f"""
        import mlflow
        mlflow.set_registry_uri({registry_uri!r})
        model = mlflow.pyfunc.load_model({model_uri!r})
        print(type(model).__name__)
        """
    )
    done = processes.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_promotion_workspace_to_registry_to_workspace(workspace, client, registry_uri, sklearn_model_dir, model_name):
    import mlflow

    client.create_registered_model(model_name)
    source = client.create_model_version(
        model_name, str(sklearn_model_dir), run_id=None, tags={"quality": "gold"}, description="trained in dev"
    )
    ws_version = f"{workspace.registry_uri()}/models/{model_name}/versions/{source.version}"

    reg = mlflow.MlflowClient(registry_uri=registry_uri)
    promoted = reg.create_model_version(model_name + "-p", ws_version) if _ensure(reg, model_name + "-p") else None
    assert promoted.version == 1
    assert promoted.tags == {"quality": "gold"} and promoted.description == "trained in dev"
    assert promoted.source == source.source
    raw = reg._get_registry_client().store._assets.version(model_name + "-p", "1")
    assert raw["properties"]["properties"]["mlflow.promotedFrom"].endswith(
        f"/workspaces/local-ws/models/{model_name}/versions/1"
    )
    reg.set_registered_model_alias(model_name + "-p", "champion", "1")

    # registry -> the second workspace, by alias; the load then needs only the registry URI.
    other = mlflow.MlflowClient(registry_uri=workspace.registry_uri("local-ws-2"))
    _ensure(other, model_name)
    back = other.create_model_version(model_name, f"{registry_uri}/models/{model_name}-p@champion")
    assert back.tags == {"quality": "gold"}
    env = {**os.environ, "MLFLOW_REGISTRY_URI": registry_uri}
    assert "PyFuncModel" in _load_in_fresh_process(registry_uri, f"models:/{model_name}-p@champion", env)


def _ensure(client, name) -> bool:
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return True


@pytest.mark.parametrize(
    "source",
    ["azureml://datastores/workspaceblobstore/paths/x/model", "azureml://jobs/j1/outputs/model/paths/m",
     "azureml:some-model:1", "azureml:some-model@latest"],
)
def test_workspace_sources_are_refused_in_a_registry_before_any_request(workspace, reg, model_name, source):
    reg.create_registered_model(model_name)
    store = reg._get_registry_client().store
    mark = len(workspace.requests)
    with pytest.raises(MlflowException) as caught:
        store.create_model_version(model_name, source)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "promote" in caught.value.message and "registry" in caught.value.message
    assert len(workspace.requests) == mark


def test_registry_tags_stay_mlflow_tags(reg, sklearn_model_dir, model_name):
    reg.create_registered_model(model_name)
    reg.create_model_version(model_name, str(sklearn_model_dir))
    with pytest.raises(MlflowException):
        reg.set_model_version_tag(model_name, "1", "mlflow.stage", "Production")
    reg.transition_model_version_stage(model_name, "1", "Production")
    assert reg.get_model_version(model_name, "1").tags == {}
    reg.set_model_version_tag(model_name, "1", "a", "b")
    assert reg.get_model_version(model_name, "1").current_stage == "Production"
    assert ModelVersionTag("a", "b")


def test_registry_uri_from_an_ml_client_bound_to_the_registry(workspace, model_name):
    import mlflow
    from azure.ai.ml import MLClient

    from mlflow_azureml_registry import registry_uri_from_ml_client
    from mlflow_azureml_registry.azure.workspace import RegistryRef
    from mlflow_azureml_registry.uri import parse_registry_uri

    ml = MLClient(**workspace.ml_client_kwargs(registry="local-registry"))
    uri = registry_uri_from_ml_client(ml)
    assert parse_registry_uri(uri) == RegistryRef("local-registry")
    client = mlflow.MlflowClient(registry_uri=uri)
    client.create_registered_model(model_name)
    assert workspace.registry_state.get_model("local-registry", model_name)["name"] == model_name


def test_an_unknown_registry_is_not_found_and_says_so(workspace):
    import mlflow

    client = mlflow.MlflowClient(registry_uri="azureml-registry://registries/no-such-registry")
    with pytest.raises(MlflowException) as caught:
        client.get_registered_model("m")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "no-such-registry" in caught.value.message and "Traceback" not in caught.value.message


def test_writes_wait_for_their_long_running_operation(workspace, reg, sklearn_model_dir, model_name):
    """The service answers 202 while it works (recorded: once); each write is polled until it is done, and what it
    wrote is there when the call returns."""
    reg.create_registered_model(model_name)
    state = workspace.registry_state
    state.polls_in_progress = 3
    try:
        mark = len(workspace.requests)
        reg.create_model_version(model_name, str(sklearn_model_dir))
        reg.set_model_version_tag(model_name, "1", "k", "v")
        polls = [r for r in workspace.requests[mark:] if r.get("operation") == "AssetStoreOperations_Get"]
    finally:
        state.polls_in_progress = 0
    assert reg.get_model_version(model_name, "1").tags == {"k": "v"}
    assert len(polls) == 3 * 4  # version PUT, model stamp, tag PUT: each 3 x 202, then 200


def test_a_pending_upload_that_holds_files_is_never_written_into(workspace, reg, sklearn_model_dir, model_name):
    """Another writer's files in the storage Azure ML hands out for version 1 (a writer that is not this plugin, or
    a service that hands out an existing version's storage): the plugin takes the next number and leaves them."""
    from azure.core.exceptions import ResourceExistsError

    reg.create_registered_model(model_name)
    registry = workspace.registry_state.registry("local-registry")
    container = workspace.blob_service(registry.account).get_container_client(
        registry.upload_container(model_name, "1")
    )
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    container.upload_blob("theirs/MLmodel", b"their files")
    mv = reg.create_model_version(model_name, str(sklearn_model_dir))
    assert mv.version == 2
    assert container.download_blob("theirs/MLmodel").readall() == b"their files"
    assert [b.name for b in container.list_blobs()] == ["theirs/MLmodel"]


def test_every_source_kind_registers_into_a_registry(workspace, client, reg, sklearn_model_dir, model_name, tmp_path):
    """Sources that work for a workspace work for a registry, each copied into the registry's own storage."""
    import mlflow

    client.create_registered_model(model_name)
    in_workspace = client.create_model_version(model_name, str(sklearn_model_dir))
    reg.create_registered_model(model_name)
    first = reg.create_model_version(model_name, str(sklearn_model_dir))
    sources = [
        sklearn_model_dir.as_uri(),  # file://
        client.get_model_version_download_uri(model_name, in_workspace.version),  # a workspace datastore URI
        f"models:/{model_name}/{first.version}",  # this registry's version
        f"azureml://registries/local-registry/models/{model_name}/versions/{first.version}",  # Azure ML's id
        reg.get_model_version_download_uri(model_name, first.version),  # this registry's download URI
    ]
    made = [reg.create_model_version(model_name, source) for source in sources]
    assert [mv.version for mv in made] == [2, 3, 4, 5, 6]
    mlflow.set_registry_uri(workspace.azureml_registry_uri())
    try:
        for mv in made:
            out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}",
                                                      dst_path=str(tmp_path / str(mv.version)))
            got = files_of(Path(out))
            got.pop("registered_model_meta", None)
            assert got == files_of(sklearn_model_dir), mv.source
    finally:
        mlflow.set_registry_uri(workspace.registry_uri())


def test_models_uris_of_every_form_load_in_a_fresh_process_from_the_registry_uri_alone(
    workspace, reg, sklearn_model_dir, model_name
):
    reg.create_registered_model(model_name)
    reg.create_model_version(model_name, str(sklearn_model_dir))
    reg.create_model_version(model_name, str(sklearn_model_dir))
    reg.transition_model_version_stage(model_name, "1", "Production")
    reg.set_registered_model_alias(model_name, "champion", "2")
    uris = [f"models:/{model_name}/{form}" for form in ("1", "Production", "latest")] + [
        f"models:/{model_name}@champion"
    ]
    code = textwrap.dedent(
        f"""
        import mlflow
        for uri in {uris!r}:
            print(uri, type(mlflow.pyfunc.load_model(uri)).__name__)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_REGISTRY_URI"] = workspace.azureml_registry_uri()
    done = processes.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line.split()[-1] for line in done.stdout.splitlines()] == ["PyFuncModel"] * 4


def test_a_long_running_write_that_fails_raises_the_services_error(workspace, reg, sklearn_model_dir, model_name):
    """The service refuses the write when its operation runs (here: another modelUri for a version); the poll's
    error answer becomes the typed error, and nothing changed."""
    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.azure import errors as az
    from mlflow_azureml_registry.azure.workspace import RegistryRef

    reg.create_registered_model(model_name)
    reg.create_model_version(model_name, str(sklearn_model_dir))
    models = session.gateway(RegistryRef("local-registry")).models
    body = models.get_version(model_name, "1")
    before = body["properties"]["modelUri"]
    body["properties"]["modelUri"] = before + "-elsewhere"
    workspace.registry_state.polls_in_progress = 1
    try:
        with pytest.raises(az.AssetPathImmutable):
            models.put_version(model_name, "1", body)
    finally:
        workspace.registry_state.polls_in_progress = 0
    assert models.get_version(model_name, "1")["properties"]["modelUri"] == before


def test_concurrent_tag_writes_in_one_process_are_all_kept(reg, sklearn_model_dir, model_name):
    """A registry has no blob lease; its write lock (a file lock on the machine) holds among threads too."""
    from concurrent.futures import ThreadPoolExecutor

    reg.create_registered_model(model_name)
    reg.create_model_version(model_name, str(sklearn_model_dir))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: reg.set_model_version_tag(model_name, "1", f"k{i}", str(i)), range(16)))
    assert reg.get_model_version(model_name, "1").tags == {f"k{i}": str(i) for i in range(16)}


_WRITER = textwrap.dedent(
    """
    import sys, mlflow
    from mlflow.entities.model_registry import ModelVersionTag
    who, name, folder, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = mlflow.MlflowClient()
    for i in range(n):
        mv = client.create_model_version(name, folder, tags={"who": who, "i": str(i)}, description=f"{who}-{i}")
        client.set_model_version_tag(name, mv.version, f"extra_{who}", str(i))
        client.set_registered_model_tag(name, f"rm_{who}_{i}", "x")
        print(mv.version, flush=True)
    """
)


def test_two_processes_writing_one_registry_model_lose_nothing(workspace, reg, tmp_path, model_name):
    """The workers of one mlflow server (MLflow 3 starts 4) and other processes on the machine share the model's
    write lock (a file lock): no version number is handed out twice, no registration and no tag is lost."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w" * 100)
    reg.create_registered_model(model_name)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_REGISTRY_URI"] = workspace.azureml_registry_uri()
    n = 6
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, who, model_name, str(folder), str(n)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for who in ("A", "B")
    ]
    answers = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err[-3000:]
        answers += out.split()
    assert sorted(answers, key=int) == [str(v) for v in range(1, 2 * n + 1)]  # each number handed out once
    versions = reg.search_model_versions(f"name = '{model_name}'")
    assert len(versions) == 2 * n
    seen = set()
    for mv in versions:
        assert mv.description == f"{mv.tags['who']}-{mv.tags['i']}"  # one registration's metadata
        assert set(mv.tags) == {"who", "i", f"extra_{mv.tags['who']}"}  # no other writer's tag on it
        seen.add((mv.tags["who"], mv.tags["i"]))
    assert len(seen) == 2 * n
    model_tags = reg.get_registered_model(model_name).tags
    assert {k for k in model_tags if k.startswith("rm_")} == {f"rm_{w}_{i}" for w in "AB" for i in range(n)}


def test_a_registry_uri_naming_the_wrong_subscription_or_group_is_refused(workspace, model_name):
    import mlflow

    wrong = "azureml-registry://subscriptions/11111111-0000-4000-8000-000000000000/resourceGroups/zzz/registries/" \
            "local-registry"
    with pytest.raises(MlflowException) as caught:
        mlflow.MlflowClient(registry_uri=wrong).get_registered_model(model_name)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "resource group local-rg" in caught.value.message and "registries/local-registry" in caught.value.message


@pytest.mark.parametrize("tail", ["?sig=SECRET123", "#frag", "?se=2030&sig=SECRET123"])
def test_registry_sources_with_a_query_or_fragment_are_refused_without_echoing_it(workspace, reg, model_name, tail):
    reg.create_registered_model(model_name)
    store = reg._get_registry_client().store
    mark = len(workspace.requests)
    for source in (f"azureml-registry://registries/local-registry/models/{model_name}/versions/1{tail}",
                   f"azureml://registries/local-registry/models/{model_name}/versions/1{tail}"):
        with pytest.raises(MlflowException) as caught:
            store.create_model_version(model_name, source)
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "SECRET123" not in caught.value.message and "query or fragment" in caught.value.message
    assert len(workspace.requests) == mark


def test_promotion_through_mlflow_server_keeps_what_the_call_leaves_empty(workspace, client, sklearn_model_dir,
                                                                          model_name, tmp_path):
    """MLflow's server passes "" for every field a REST call leaves out: a promotion through it keeps the source
    version's description, run link and logged-model id as one in process does."""
    import mlflow

    from tests.servers import MlflowServer

    client.create_registered_model(model_name)
    client.create_model_version(model_name, str(sklearn_model_dir), description="trained in dev",
                                run_link="http://127.0.0.1/run/1")
    source = f"{workspace.registry_uri()}/models/{model_name}/versions/1"
    with MlflowServer(tmp_path / "srv", registry_uri=workspace.azureml_registry_uri()) as server:
        rest = mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        rest.create_registered_model(model_name)
        promoted = rest.create_model_version(model_name, source)
    assert promoted.description == "trained in dev" and promoted.run_link == "http://127.0.0.1/run/1"
    facts = workspace.registry_state.get_version("local-registry", model_name, str(promoted.version))["properties"]
    assert facts["properties"]["mlflow.promotedFrom"].endswith(f"/models/{model_name}/versions/1")


def test_a_promoted_datastore_source_names_its_workspace(workspace, client, reg, sklearn_model_dir, model_name):
    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.azure.workspace import WorkspaceRef

    client.create_registered_model(model_name)
    mv = client.create_model_version(model_name, str(sklearn_model_dir))
    location = client.get_model_version_download_uri(model_name, mv.version)
    path = location.split("/paths/", 1)[1]
    client.create_model_version(model_name, f"azureml://datastores/workspaceblobstore/paths/{path}")
    reg.create_registered_model(model_name)
    promoted = reg.create_model_version(model_name, f"{workspace.registry_uri()}/models/{model_name}/versions/2")
    ws = WorkspaceRef(workspace.subscription_id, workspace.resource_group, "local-ws")
    assert promoted.source == f"{ws.asset_prefix}/datastores/workspaceblobstore/paths/{path}"
    assert session  # the promoted source is still a source the workspace's own URI forms take
