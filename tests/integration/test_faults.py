"""A full registry workflow while the control plane fails a fifth of its requests (issue #7).

Faults: 429 with Retry-After, 500/503, connections dropped before dispatch, and answers lost after
the write happened (see mlflow_azureml_registry/local/faults.py). Every operation must end correctly
or with a clear MlflowException, and afterwards the registry holds exactly what the successful calls
made: no duplicate version from a retried PUT, no version without its files, no lost tag or alias.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import pytest
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry.local.faults import KINDS, FaultInjector

from ..conftest import files_of

pytestmark = pytest.mark.emulator_only("injects faults through the emulator's interceptor")

FAULT_RATE = 0.2
CLEAR_ERROR_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def _model_folder(root: Path, i: int) -> Path:
    folder = root / f"model-{i}"
    (folder / "data").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(bytes([i]) * (1000 + i))
    (folder / "data" / "notes.txt").write_text(f"model {i}\n")
    return folder


class Workflow:
    """Runs operations, recording which succeeded; the expected registry is built from the successes only."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, MlflowException]] = []
        self.succeeded: list[str] = []

    def run(self, what: str, call: Callable[[], Any]) -> bool:
        """True when ``call`` succeeded (its result in ``self.result``); False after a clear error."""
        self.result = None
        try:
            self.result = call()
        except MlflowException as exc:
            assert exc.error_code in CLEAR_ERROR_CODES, f"{what}: unexpected error {exc.error_code}: {exc.message}"
            assert "Azure ML" in exc.message, exc.message
            self.failures.append((what, exc))
            return False
        self.succeeded.append(what)
        return True


def test_full_workflow_at_a_fifth_of_requests_failing(workspace, client, model_name, tmp_path, caplog):
    import mlflow

    caplog.set_level(logging.WARNING)
    folders = [_model_folder(tmp_path, i) for i in range(6)]
    dl = tmp_path / "dl"
    injector = FaultInjector(FAULT_RATE, seed=7, retry_after_s=1)
    flow = Workflow()
    registered: dict[str, dict[str, Any]] = {}  # version -> what the successful calls made
    aliases: dict[str, str] = {}
    model_tags: dict[str, str] = {}
    workspace.set_interceptor(injector)
    try:
        if flow.run("create model", lambda: client.create_registered_model(model_name, tags={"team": "a"})):
            model_tags["team"] = "a"
        for i, folder in enumerate(folders):
            if flow.run(
                f"register {i}",
                lambda i=i, folder=folder: client.create_model_version(
                    model_name, str(folder), tags={"i": str(i)}, description=f"d{i}"
                ),
            ):
                mv = flow.result
                assert mv.tags == {"i": str(i)} and mv.description == f"d{i}"
                registered[mv.version] = {"i": str(i), "tags": {"i": str(i)}, "stage": "None", "desc": f"d{i}"}
        versions = sorted(registered, key=int)
        assert len(versions) >= 4, f"too few registrations survived: {flow.failures}"
        v1, v2, v3, v4 = versions[:4]
        for v in versions:
            if flow.run(f"tag {v}", lambda v=v: client.set_model_version_tag(model_name, v, "checked", "yes")):
                registered[v]["tags"]["checked"] = "yes"
        for alias, v in (("champion", v2), ("challenger", v3)):
            if flow.run(f"alias {alias}", lambda a=alias, v=v: client.set_registered_model_alias(model_name, a, v)):
                aliases[alias] = v
        if flow.run("tag model", lambda: client.set_registered_model_tag(model_name, "owner", "ml")):
            model_tags["owner"] = "ml"
        if flow.run("stage v1", lambda: client.transition_model_version_stage(model_name, v1, "Staging")):
            registered[v1]["stage"] = "Staging"
        if flow.run(
            "stage v2",
            lambda: client.transition_model_version_stage(model_name, v2, "Staging", archive_existing_versions=True),
        ):
            registered[v2]["stage"] = "Staging"
            for v, facts in registered.items():
                if v != v2 and facts["stage"] == "Staging":
                    facts["stage"] = "Archived"
        if flow.run("describe v3", lambda: client.update_model_version(model_name, v3, "better")):
            registered[v3]["desc"] = "better"
        if flow.run("delete v4", lambda: client.delete_model_version(model_name, v4)):
            del registered[v4]
        if flow.run("delete alias", lambda: client.delete_registered_model_alias(model_name, "challenger")):
            aliases.pop("challenger")
        flow.run("search", lambda: client.search_model_versions(f"name = '{model_name}'"))
        if flow.run(
            "download @champion",
            lambda: mlflow.artifacts.download_artifacts(f"models:/{model_name}@champion", dst_path=str(dl)),
        ):
            assert files_of(Path(flow.result)) == files_of(folders[int(registered[v2]["i"])])
    finally:
        workspace.set_interceptor(None)

    # The faults really happened, of every kind, and most calls still succeeded.
    print(f"{injector.summary()}; {len(flow.succeeded)} calls succeeded, {len(flow.failures)} failed clearly")
    for what, exc in flow.failures:
        print(f"failed: {what}: {exc.message}")
    assert all(injector.injected[kind] > 0 for kind in KINDS), injector.summary()
    assert sum(injector.injected.values()) >= 20, injector.summary()
    assert len(flow.failures) <= 2, flow.failures

    # Afterwards (no faults), the registry holds exactly what the successful calls made.
    stored = {mv.version: mv for mv in client.search_model_versions(f"name = '{model_name}'")}
    failed_registrations = {what for what, _ in flow.failures if what.startswith("register")}
    extra = set(stored) - set(registered)
    # A registration that reported failure may have landed (its PUT's answer lost, then retries exhausted);
    # if so it is whole (checked below) and carries its own metadata. Nothing else may appear.
    assert len(extra) <= len(failed_registrations), (extra, flow.failures)
    assert set(registered) <= set(stored)
    by_index = [mv.tags.get("i") for mv in stored.values()]
    assert len(by_index) == len(set(by_index)), f"a registration was stored twice: {sorted(by_index)}"
    for v, facts in registered.items():
        mv = stored[v]
        assert mv.tags == facts["tags"], (v, mv.tags)
        assert mv.current_stage == facts["stage"], (v, mv.current_stage)
        assert mv.description == facts["desc"]
    model = client.get_registered_model(model_name)
    assert model.tags == model_tags
    assert dict(model.aliases) == aliases
    # No version without its files: every stored version downloads whole and verified.
    for v, mv in stored.items():
        got = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{v}", dst_path=str(tmp_path / f"check-{v}"))
        assert files_of(Path(got)) == files_of(folders[int(mv.tags["i"])])


class OnFirst(FaultInjector):
    """Faults the first request with this method whose path contains ``fragment``; lets all others through."""

    def __init__(self, kind: str, method: str, fragment: str) -> None:
        super().__init__(1.0, kinds=(kind,), retry_after_s=0)
        self.method, self.fragment = method, fragment

    def before(self, request):
        if request.method == self.method and self.fragment in request.path and not self.injected:
            return super().before(request)
        return None


@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_on_the_version_put_yields_exactly_one_version(workspace, client, model_name, tmp_path, kind):
    """The riskiest request, PUT version, hit by each fault in turn: one version, with its own metadata."""
    client.create_registered_model(model_name)
    injector = OnFirst(kind, "PUT", "/versions/")
    workspace.set_interceptor(injector)
    try:
        mv = client.create_model_version(model_name, str(_model_folder(tmp_path, 1)), tags={"who": "me"})
    finally:
        workspace.set_interceptor(None)
    assert injector.injected[kind] == 1
    versions = client.search_model_versions(f"name = '{model_name}'")
    assert [(m.version, m.tags) for m in versions] == [(mv.version, {"who": "me"})]


@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_on_delete_still_deletes_once(workspace, client, model_name, tmp_path, kind):
    """A DELETE whose answer is lost is sent again and finds nothing (204 or 404): still a success."""
    client.create_registered_model(model_name)
    folder = _model_folder(tmp_path, 2)
    for _ in range(2):
        client.create_model_version(model_name, str(folder))
    client.set_registered_model_alias(model_name, "keep", "2")
    client.set_registered_model_alias(model_name, "gone", "1")
    injector = OnFirst(kind, "DELETE", "/versions/")
    workspace.set_interceptor(injector)
    try:
        client.delete_model_version(model_name, "1")
    finally:
        workspace.set_interceptor(None)
    assert injector.injected[kind] == 1
    assert [m.version for m in client.search_model_versions(f"name = '{model_name}'")] == [2]
    assert dict(client.get_registered_model(model_name).aliases) == {"keep": 2}


@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_on_list_secrets_is_survived(workspace, client, model_name, tmp_path, kind):
    """listSecrets is a POST (azure-core does not resend it after a lost answer); asking again is harmless."""
    from mlflow_azureml_registry import session

    client.create_registered_model(model_name)
    session.reset()  # a new process's first transfer asks for the datastore's SAS
    injector = OnFirst(kind, "POST", "/listSecrets")
    workspace.set_interceptor(injector)
    try:
        mv = client.create_model_version(model_name, str(_model_folder(tmp_path, 3)))
    finally:
        workspace.set_interceptor(None)
    assert injector.injected[kind] == 1
    assert mv.version == 1
