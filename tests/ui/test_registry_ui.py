"""The MLflow UI of ``mlflow server --registry-store-uri azureml-registry://.../registries/<registry>``, in headless
Chromium: the registry path of ``test_mlflow_ui`` (whose helpers it uses; its fixtures are not imported).

An Azure ML registry is not a workspace: its versions have no stage field (the plugin keeps MLflow's stage in the
version tag ``mlflow.stage``), aliases are tags of the model container (``mlflow.alias.<alias>``), and its writes
are long-running operations. Models are set up through the server's REST API, the UI pages show them, and a tag
edited and an alias set by clicking in the UI are then what the emulated registry holds
(``workspace.registry_state``), its reserved tags kept and never shown. The tests run in file order: the last one
reads the server log for tracebacks and the browser's record of failed API calls and requests off loopback.

The registry is the session's (other modules register into it too): pages are opened as ``test_mlflow_ui`` opens
them, searched for this module's models or once they hold their own model.
"""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace

import mlflow
import pytest

from mlflow_azureml_registry.local.state import ArmError
from mlflow_azureml_registry.mapping import ALIAS_TAG_PREFIX, LAST_UPDATED_TAG, STAGE_TAG
from tests.servers import MlflowServer, plugin_tracebacks
from tests.ui.test_mlflow_ui import (
    cell,
    expect_only_rows,
    field,
    legacy_registry_ui,
    open_models_list,
    open_route,
    open_version_page,
    row_of,
    search_filters,
    tag_row,
    tracking_uri,
    version_tags_table,
)

try:
    from playwright.sync_api import expect
except ImportError:  # conftest's _browser_available skips every test (or, under CI, fails it)
    expect = None

REGISTRY = "local-registry"  # the local workspace's registry (workspace.azureml_registry_uri())
WORKSPACE = "local-ws"


@pytest.fixture(scope="module")
def server(workspace, tmp_path_factory: pytest.TempPathFactory):
    """``mlflow server --registry-store-uri <the local registry's URI>`` (conftest's ``server`` is a workspace's)."""
    registry_uri = workspace.azureml_registry_uri()
    assert f"/registries/{REGISTRY}" in registry_uri
    with MlflowServer(tmp_path_factory.mktemp("ui-registry-server"), registry_uri=registry_uri) as running:
        yield running


@pytest.fixture(scope="module")
def rest(server):
    """A client of the server's REST API (both URIs explicit: a global registry URI would win otherwise)."""
    return mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)


@pytest.fixture(scope="module")
def models(rest, sklearn_model_dir, workspace):
    """In the registry: alpha, 3 versions (Staging, Production + @champion, None); beta, 1 version, no alias;
    gamma, 2 versions (1 in Staging, @champion on 2), edited through the UI by the last tests."""
    prefix = f"uireg{uuid.uuid4().hex[:6]}"
    names = SimpleNamespace(prefix=prefix, alpha=f"{prefix}-alpha", beta=f"{prefix}-beta", gamma=f"{prefix}-gamma")
    run = rest.create_run(rest.get_experiment_by_name("Default").experiment_id)  # the server's tracking store
    with tracking_uri(rest.tracking_uri):  # MLflow 2.16 resolves mlflow-artifacts: with the global tracking URI
        rest.log_artifacts(run.info.run_id, str(sklearn_model_dir), "model")  # through the server's artifact proxy
    rest.set_terminated(run.info.run_id)
    source = f"runs:/{run.info.run_id}/model"  # mlflow server refuses local paths as sources
    rest.create_registered_model(names.alpha, tags={"team": "risk"}, description="alpha, in the registry")
    for version_tags in ({"owner": "ui-test"}, {"owner": "ui-test", "validated": "yes"}, {"owner": "ui-test"}):
        rest.create_model_version(names.alpha, source, run_id=run.info.run_id, tags=version_tags)
    rest.transition_model_version_stage(names.alpha, "1", "Staging")
    rest.transition_model_version_stage(names.alpha, "2", "Production")
    rest.set_registered_model_alias(names.alpha, "champion", "2")
    rest.create_registered_model(names.beta)
    rest.create_model_version(names.beta, source, run_id=run.info.run_id)
    rest.create_registered_model(names.gamma)
    rest.create_model_version(names.gamma, source, run_id=run.info.run_id, tags={"owner": "ui-test"})
    rest.create_model_version(names.gamma, source, run_id=run.info.run_id)
    rest.transition_model_version_stage(names.gamma, "1", "Staging")
    rest.set_registered_model_alias(names.gamma, "champion", "2")
    for name in (names.alpha, names.beta, names.gamma):  # the server wrote to the registry, not the workspace
        assert workspace.registry_state.get_model(REGISTRY, name)["name"] == name
        with pytest.raises(ArmError):
            workspace.state.get_model(WORKSPACE, name)
    return names


def registry_tags(workspace, name: str, version: str | None = None) -> dict[str, str]:
    """The tags the registry holds on model ``name`` (its container) or on one of its versions."""
    state = workspace.registry_state
    resource = state.get_model(REGISTRY, name) if version is None else state.get_version(REGISTRY, name, version)
    return resource["properties"]["tags"]


def versions_table(page):
    return page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Registered at"))


# ---------------------------------------------------------------------------------------------- pages
def test_registered_models_page_lists_registry_models_with_latest_version_and_aliases(page, snap, server, models):
    searches = []  # every registered-models/search call of the page: all must be for this module's models
    page.on("request", lambda request: searches.append(request.url) if "/registered-models/search" in request.url
            else None)
    names = (models.alpha, models.beta, models.gamma)
    table = open_models_list(page, server, models.prefix)  # the session's registry holds other tests' models
    alpha, beta, gamma = (row_of(table, name) for name in names)
    expect_only_rows(table, names)
    expect(cell(table, alpha, "Latest version")).to_have_text("Version 3")
    expect(cell(table, beta, "Latest version")).to_have_text("Version 1")
    expect(cell(table, gamma, "Latest version")).to_have_text("Version 2")
    for row in (alpha, gamma):
        aliased = cell(table, row, "Aliased versions")
        expect(aliased.get_by_role("link")).to_have_text(re.compile(r"@\s*champion\s*:\s*Version 2"))
    expect(cell(table, beta, "Aliased versions").get_by_role("status")).to_have_count(0)
    expect(cell(table, alpha, "Tags")).to_have_text(re.compile(r"team:\s*risk"))
    for row in (alpha, beta, gamma):  # the containers' alias and last-update tags are the plugin's, not shown
        expect(cell(table, row, "Tags")).not_to_contain_text("mlflow.")
    snap("registry-01-registered-models")

    with legacy_registry_ui(page):  # the stage columns: the latest version in each stage (from mlflow.stage tags)
        table = open_models_list(page, server, models.prefix)
        expect(table.get_by_role("columnheader", name="Production", exact=True)).to_be_visible()
        expect_only_rows(table, names)
        expect(cell(table, alpha, "Staging")).to_have_text("Version 1")
        expect(cell(table, alpha, "Production")).to_have_text("Version 2")
        expect(cell(table, gamma, "Staging")).to_have_text("Version 1")
        expect(cell(table, beta, "Production")).to_have_text("—")
        snap("registry-02-registered-models-stages")

    filters = search_filters(searches)
    assert filters and all(models.prefix in f for f in filters), f"a search not for {models.prefix}*: {filters}"


def test_model_page_lists_registry_versions_with_aliases_and_stages(page, snap, server, models):
    open_route(page, server, f"models/{models.alpha}", page.get_by_role("heading", name=models.alpha))
    table = versions_table(page)
    versions = {v: row_of(table, f"Version {v}") for v in ("1", "2", "3")}
    for row in versions.values():
        expect(row).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(4)
    expect(cell(table, versions["2"], "Aliases").get_by_role("status")).to_have_text(re.compile(r"@\s*champion"))
    for v in ("1", "3"):
        expect(cell(table, versions[v], "Aliases").get_by_role("status")).to_have_count(0)
    expect(cell(table, versions["2"], "Tags")).to_contain_text(re.compile(r"validated\s*:\s*yes"))
    expect(cell(table, versions["2"], "Tags")).not_to_contain_text(STAGE_TAG)  # the stage is no user tag
    expect(page.get_by_text("alpha, in the registry")).to_be_visible()
    snap("registry-03-model-versions-aliases")

    with legacy_registry_ui(page):
        expect(table.get_by_role("columnheader", name="Stage", exact=True)).to_be_visible()
        for v, stage in (("1", "Staging"), ("2", "Production"), ("3", "None")):
            expect(cell(table, versions[v], "Stage")).to_have_text(stage)
        snap("registry-04-model-versions-stages")


def test_registry_version_page_shows_tags_alias_stage_and_schema(page, snap, server, models, workspace):
    # The page reads the version's MLmodel (its schema) through /model-versions/get-artifact, outside /ajax-api/
    # (so not in ``browser.api_errors``): from the registry's own storage, through the plugin's data reference.
    artifact_reads = []
    page.on("response", lambda r: artifact_reads.append(r) if "/model-versions/get-artifact" in r.url else None)
    for version, tags, alias, stage in (
        ("2", {"owner": "ui-test", "validated": "yes"}, "champion", "Production"),
        ("1", {"owner": "ui-test"}, None, "Staging"),
    ):
        # What the registry holds: the stage as a version tag, the alias as a tag of the model's container.
        held = registry_tags(workspace, models.alpha, version)
        held.pop(LAST_UPDATED_TAG, None)  # MLflow's last update, when it is not Azure ML's (checked further on)
        assert held == {**tags, STAGE_TAG: stage}
        open_version_page(page, server, models.alpha, version)
        expect(field(page, r"^Stage( \(deprecated\))?$")).to_contain_text(stage)
        aliases = field(page, r"^Aliases$")
        if alias:
            expect(aliases.get_by_role("status")).to_have_text(re.compile(rf"@\s*{alias}$"))
        else:
            expect(aliases.get_by_title("Add aliases")).to_be_visible()
            expect(aliases.get_by_role("status")).to_have_count(0)
        tags_table = version_tags_table(page)
        expect(tags_table.get_by_role("row")).to_have_count(len(tags))  # mlflow.stage is not among them
        for key, value in tags.items():
            expect(tag_row(tags_table, key).get_by_role("cell").nth(1)).to_have_text(value)
        expect(page.get_by_text(re.compile(r"^Inputs \(4\)$"))).to_be_visible()  # the iris model's 4 columns
        snap(f"registry-05-version-{version}")
    assert artifact_reads and all(r.ok for r in artifact_reads), [(r.status, r.url) for r in artifact_reads]
    assert registry_tags(workspace, models.alpha)[f"{ALIAS_TAG_PREFIX}champion"] == "2"


# ---------------------------------------------------------------------------------------------- edits in the UI
def test_version_tag_edited_in_ui_is_what_the_registry_holds(page, snap, server, models, workspace, rest):
    open_version_page(page, server, models.gamma, "1")
    row = tag_row(page, "owner")
    row.get_by_test_id("editable-table-button-edit").click()  # the pencil: the value becomes a text box
    row.get_by_role("textbox").fill("edited-in-ui")
    with page.expect_response(lambda r: r.url.endswith("/model-versions/set-tag")) as saved:
        row.get_by_role("button", name="Save").click()
    assert saved.value.ok, saved.value.text()
    expect(row.get_by_role("cell").nth(1)).to_have_text("edited-in-ui")
    page.get_by_role("textbox", name="tag name").fill("reviewed")  # and a new tag, from the form below
    page.get_by_role("textbox", name="tag value").fill("yes")
    with page.expect_response(lambda r: r.url.endswith("/model-versions/set-tag")) as added:
        page.get_by_test_id("add-tag-button").click()
    assert added.value.ok, added.value.text()
    expect(tag_row(page, "reviewed").get_by_role("cell").nth(1)).to_have_text("yes")
    snap("registry-06-version-tag-edited")

    expected = {"owner": "edited-in-ui", "reviewed": "yes"}
    version = rest.get_model_version(models.gamma, "1")  # MLflow, through the server
    assert version.tags == expected
    assert version.current_stage == "Staging"
    # The registry's version: the same tags, its stage kept in its tag through both writes, and MLflow's last
    # update of the version (the plugin's tag, hidden from MLflow).
    assert registry_tags(workspace, models.gamma, "1") == {
        **expected, STAGE_TAG: "Staging", LAST_UPDATED_TAG: str(version.last_updated_timestamp)}
    page.reload()
    expect(tag_row(page, "owner").get_by_role("cell").nth(1)).to_have_text("edited-in-ui")
    expect(version_tags_table(page).get_by_role("row")).to_have_count(len(expected))  # no reserved tag shown
    expect(field(page, r"^Stage( \(deprecated\))?$")).to_contain_text("Staging")


def test_alias_set_in_ui_is_a_container_tag_of_the_registry_model(page, snap, server, models, workspace, rest):
    open_version_page(page, server, models.gamma, "1")
    field(page, r"^Aliases$").get_by_title("Add aliases").click()
    dialog = page.get_by_role("dialog", name=re.compile(r"alias for model version 1"))
    dialog.get_by_role("combobox").fill("challenger")
    dialog.get_by_role("combobox").press("Enter")  # the typed alias becomes a tag in the dialog
    expect(dialog.get_by_role("status", name="challenger")).to_be_visible()
    with page.expect_response(lambda r: r.url.endswith("/registered-models/alias")) as saved:
        dialog.get_by_role("button", name="Save aliases").click()
    assert saved.value.ok, saved.value.text()
    expect(dialog).to_be_hidden()
    expect(field(page, r"^Aliases$").get_by_role("status")).to_have_text(re.compile(r"@\s*challenger$"))
    snap("registry-07-version-alias-set")

    model = rest.get_registered_model(models.gamma)
    assert model.aliases == {"champion": "2", "challenger": "1"}
    assert model.tags == {}  # the aliases' (and the last update's) tags are the plugin's, hidden from MLflow
    assert registry_tags(workspace, models.gamma) == {
        f"{ALIAS_TAG_PREFIX}champion": "2", f"{ALIAS_TAG_PREFIX}challenger": "1",
        LAST_UPDATED_TAG: str(model.last_updated_timestamp)}
    assert registry_tags(workspace, models.gamma, "1")[STAGE_TAG] == "Staging"  # the version keeps its stage
    assert rest.get_model_version_by_alias(models.gamma, "challenger").version == "1"

    open_route(page, server, f"models/{models.gamma}", page.get_by_role("heading", name=models.gamma))
    table = versions_table(page)
    expect(cell(table, row_of(table, "Version 1"), "Aliases").get_by_role("status")).to_have_text(
        re.compile(r"@\s*challenger"))
    expect(cell(table, row_of(table, "Version 2"), "Aliases").get_by_role("status")).to_have_text(
        re.compile(r"@\s*champion"))
    snap("registry-08-model-after-ui-edits")


def test_no_traceback_no_failed_api_call_and_browser_stayed_on_loopback(server, browser, models):
    assert plugin_tracebacks(server.log()) == [], server.log_path
    assert browser.api_errors == [], server.log_path
    assert browser.off_loopback == []
