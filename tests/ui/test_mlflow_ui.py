"""The MLflow UI of ``mlflow server --registry-store-uri azureml-registry://...``, in headless Chromium.

Models are set up through the server's REST API; the UI pages show them; a tag edited and an alias set by
clicking in the UI are then what Azure ML itself holds (``MLClient``, and the workspace's stored container).
Selectors are roles and visible text, which MLflow 2.16 and 3.x share. The tests run in file order: the last
one reads the server log for tracebacks and the browser's record of requests off loopback.

The workspace is the session's: in a whole-suite run it holds 100+ other tests' models, so the Registered Models
page is only ever opened searched for this module's models (``open_models_list``), never read unfiltered, and a
version page is read only once it holds its own model, whatever the UI's first page of all models holds
(``open_version_page``).
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, urlsplit

import mlflow
import pytest

from mlflow_azureml_registry.mapping import ALIAS_TAG_PREFIX
from tests.servers import plugin_tracebacks

try:
    from playwright.sync_api import expect
except ImportError:  # conftest's _browser_available skips every test (or, under CI, fails it)
    expect = None

WORKSPACE = "local-ws"
NEW_UI = "New model registry UI"
LAST_UPDATED = "mlflow.lastUpdated"  # MLflow's last update, kept on Azure ML's model or version (README)


@contextmanager
def tracking_uri(uri: str):
    saved = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved)


@pytest.fixture(scope="module")
def rest(server):
    """A client of the server's REST API (both URIs explicit: a global registry URI would win otherwise)."""
    return mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)


@pytest.fixture(scope="module")
def models(rest, sklearn_model_dir):
    """alpha: 3 versions (Staging, Production + @champion, None); beta: 1 version, no alias;
    gamma: 2 versions (@champion on 2), edited through the UI by the last tests."""
    prefix = f"ui{uuid.uuid4().hex[:6]}"
    names = SimpleNamespace(prefix=prefix, alpha=f"{prefix}-alpha", beta=f"{prefix}-beta", gamma=f"{prefix}-gamma")
    run = rest.create_run(rest.get_experiment_by_name("Default").experiment_id)  # the server's tracking store
    with tracking_uri(rest.tracking_uri):  # MLflow 2.16 resolves mlflow-artifacts: with the global tracking URI
        rest.log_artifacts(run.info.run_id, str(sklearn_model_dir), "model")  # through the server's artifact proxy
    rest.set_terminated(run.info.run_id)
    source = f"runs:/{run.info.run_id}/model"  # mlflow server refuses local paths as sources
    rest.create_registered_model(names.alpha, tags={"team": "risk"}, description="alpha, seen in the UI")
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
    rest.set_registered_model_alias(names.gamma, "champion", "2")
    return names


@pytest.fixture(scope="module")
def ml_client(workspace):
    from azure.ai.ml import MLClient

    return MLClient(**workspace.ml_client_kwargs())


# ---------------------------------------------------------------------------------------------- helpers
def open_route(page, server, route: str, ready) -> None:
    """Load ``<server>/#/<route>`` as a new document and wait until ``ready`` (a locator) is visible.

    From a page of the UI, going to another ``#/`` route only changes the URL's fragment: the browser keeps the
    document, and the UI's state with it (a page that reads its URL once, such as Registered Models' search, then
    ignores the new one). Such a ``goto`` answers no response; the page is then reloaded from its new URL."""
    if page.goto(f"{server.url}/#/{route}") is None:
        page.reload()
    expect(ready).to_be_visible()


def open_models_list(page, server, name_filter: str):
    """The Registered Models page searched for names containing ``name_filter``; its table.

    The search is in the URL (``#/models?searchInput=...``, read by MLflow 2.16 and 3.x alike), so the page asks
    for the filtered list only. Typed into the page's search box instead, the search comes after the page's
    first request, for the first page of all models: with the session's 100+ models that one answers after the
    filtered one, and its answer replaces the table (the UI keeps no order between its requests) while the
    search box still shows the filter.
    """
    heading = page.get_by_role("heading", name="Registered Models")
    open_route(page, server, f"models?searchInput={quote(name_filter)}", heading)
    expect(page.get_by_role("textbox", name=re.compile("registered models", re.IGNORECASE))).to_have_value(name_filter)
    return page.get_by_role("table")


def open_version_page(page, server, model: str, version: str) -> None:
    """The page of version ``version`` of ``model``, once it holds ``model`` (and so its aliases).

    The page asks for its registered model (the Aliases field, and the aliases dialog's model name and existing
    aliases, come from it), and its "Promote model" button asks for the first page of all registered models,
    whose answer replaces every registered model the UI holds (MLflow 2.16 and 3.x alike). With the session's
    100+ models ``model`` is not on that page: if that answer comes last, the page has no model, shows no alias,
    and its aliases dialog saves with an empty model name (HTTP 400). The model's own request is therefore held
    until that search has answered, then let through.
    """
    held, release = [], []

    def hold(route) -> None:
        if release:
            route.continue_()
        else:
            held.append(route)

    model_get = re.compile(r"/ajax-api/2\.0/mlflow/registered-models/get\?")
    page.route(model_get, hold)
    try:
        with page.expect_response(lambda r: "/registered-models/search" in r.url and search_filters([r.url]) == [""]):
            open_route(page, server, f"models/{model}/versions/{version}",
                       page.get_by_role("heading", name=f"Version {version}", exact=True))
        assert held, "the page did not ask for its registered model"
        with page.expect_response(model_get) as answer:
            release.append(True)
            for route in held:
                route.continue_()
        assert answer.value.ok, answer.value.text()
        answer.value.finished()
    finally:
        release.append(True)
        page.unroute(model_get, hold)  # later requests (after an edit) go straight through


def expect_only_rows(table, names) -> None:
    """``table`` lists exactly the models ``names``: a row for each, and no other row than the header."""
    for name in names:
        expect(row_of(table, name)).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(len(names) + 1)


def search_filters(urls: list[str]) -> list[str]:
    """The ``filter`` of each ``registered-models/search`` call (``""``: none)."""
    return [parse_qs(urlsplit(url).query).get("filter", [""])[0] for url in urls]


def _root(scope):
    """The page of a locator (``filter(has=...)`` takes a locator rooted at the page, not at an element)."""
    return getattr(scope, "page", scope)


def row_of(scope, link_name: str):
    """The row, in ``scope``, holding a link named exactly ``link_name``."""
    return scope.get_by_role("row").filter(has=_root(scope).get_by_role("link", name=link_name, exact=True))


def cell(table, row, header: str):
    """``row``'s cell under the column headed ``header`` (header and rows have the same cells)."""
    headers = [text.strip() for text in table.get_by_role("row").first.get_by_role("columnheader").all_inner_texts()]
    return row.get_by_role("cell").nth(headers.index(header))


def field(page, label: str):
    """A "label : value" item of a version page (Aliases, Stage), found by its label's text."""
    items = page.locator("[data-testid='descriptions-item'], [data-test-id='descriptions-item']")
    return items.filter(has=page.get_by_text(re.compile(label), exact=True))


@contextmanager
def legacy_registry_ui(page):
    """Switch the page to the stage-based registry UI (the "New model registry UI" switch off), then back.

    The switch is a setting of the browser (localStorage), shared by the module's later tests: it is switched
    back even when the block fails (and the ``page`` fixture clears the settings after a failed test)."""
    switch = page.get_by_role("switch", name=NEW_UI)
    expect(switch).to_be_checked()  # MLflow's default
    switch.click()
    confirm = page.get_by_role("dialog", name="Disable the new model stages")
    confirm.get_by_role("button", name="Disable").click()
    expect(confirm).to_be_hidden()
    expect(switch).not_to_be_checked()
    try:
        yield
    finally:
        switch.click()  # re-enabling asks nothing
        expect(switch).to_be_checked()


def version_tags_table(page):
    return page.get_by_role("table").filter(has=page.get_by_role("cell", name="owner", exact=True))


def tag_row(scope, key: str):
    return scope.get_by_role("row").filter(has=_root(scope).get_by_role("cell", name=key, exact=True))


# ---------------------------------------------------------------------------------------------- pages
def test_registered_models_page_lists_models_with_latest_version_and_aliases(page, snap, server, models):
    searches = []  # every registered-models/search call of the page: all must be for this module's models
    page.on("request", lambda request: searches.append(request.url) if "/registered-models/search" in request.url
            else None)
    names = (models.alpha, models.beta, models.gamma)
    table = open_models_list(page, server, models.prefix)  # the session's workspace holds other tests' models
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
    snap("01-registered-models")

    with legacy_registry_ui(page):  # the stage columns: the latest version in each stage
        table = open_models_list(page, server, models.prefix)  # reloaded: the switch is a setting, not a view
        expect(table.get_by_role("columnheader", name="Production", exact=True)).to_be_visible()
        expect_only_rows(table, names)
        expect(cell(table, alpha, "Staging")).to_have_text("Version 1")
        expect(cell(table, alpha, "Production")).to_have_text("Version 2")
        expect(cell(table, beta, "Production")).to_have_text("—")
        snap("02-registered-models-stages")

    filters = search_filters(searches)
    assert filters and all(models.prefix in f for f in filters), f"a search not for {models.prefix}*: {filters}"


def test_model_page_lists_versions_with_aliases_and_stages(page, snap, server, models):
    open_route(page, server, f"models/{models.alpha}", page.get_by_role("heading", name=models.alpha))
    table = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Registered at"))
    versions = {v: row_of(table, f"Version {v}") for v in ("1", "2", "3")}
    for row in versions.values():
        expect(row).to_be_visible()
    expect(table.get_by_role("row")).to_have_count(4)
    expect(cell(table, versions["2"], "Aliases").get_by_role("status")).to_have_text(re.compile(r"@\s*champion"))
    for v in ("1", "3"):
        expect(cell(table, versions[v], "Aliases").get_by_role("status")).to_have_count(0)
    expect(cell(table, versions["2"], "Tags")).to_contain_text(re.compile(r"validated\s*:\s*yes"))
    expect(page.get_by_text("alpha, seen in the UI")).to_be_visible()
    snap("03-model-versions-aliases")

    with legacy_registry_ui(page):
        expect(table.get_by_role("columnheader", name="Stage", exact=True)).to_be_visible()
        for v, stage in (("1", "Staging"), ("2", "Production"), ("3", "None")):
            expect(cell(table, versions[v], "Stage")).to_have_text(stage)
        snap("04-model-versions-stages")


@pytest.mark.parametrize(
    ("version", "tags", "alias", "stage"),
    [
        ("2", {"owner": "ui-test", "validated": "yes"}, "champion", "Production"),
        ("1", {"owner": "ui-test"}, None, "Staging"),
    ],
)
def test_version_page_shows_tags_aliases_and_stage(page, snap, server, models, version, tags, alias, stage):
    open_version_page(page, server, models.alpha, version)
    expect(field(page, r"^Stage( \(deprecated\))?$")).to_contain_text(stage)
    aliases = field(page, r"^Aliases$")
    if alias:
        expect(aliases.get_by_role("status")).to_have_text(re.compile(rf"@\s*{alias}$"))
    else:
        expect(aliases.get_by_title("Add aliases")).to_be_visible()
        expect(aliases.get_by_role("status")).to_have_count(0)
    tags_table = version_tags_table(page)
    expect(tags_table.get_by_role("row")).to_have_count(len(tags))
    for key, value in tags.items():
        expect(tag_row(tags_table, key).get_by_role("cell").nth(1)).to_have_text(value)
    snap(f"05-version-{version}")


# ---------------------------------------------------------------------------------------------- edits in the UI
def test_version_tag_edited_in_ui_is_what_azure_ml_reads(page, snap, server, models, ml_client, rest):
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
    snap("06-version-tag-edited")

    expected = {"owner": "edited-in-ui", "reviewed": "yes"}
    version = rest.get_model_version(models.gamma, "1")  # MLflow, through the server
    assert version.tags == expected
    # Azure ML's own SDK: the same tags, and MLflow's last update of the version (a tag write is no update in
    # MLflow, it is one in Azure ML: the plugin keeps MLflow's time in a tag of its own, hidden from MLflow).
    assert ml_client.models.get(models.gamma, version="1").tags == {
        **expected, LAST_UPDATED: str(version.last_updated_timestamp)}
    page.reload()
    expect(tag_row(page, "owner").get_by_role("cell").nth(1)).to_have_text("edited-in-ui")
    expect(version_tags_table(page).get_by_role("row")).to_have_count(len(expected))  # no reserved tag shown


def test_alias_set_in_ui_is_what_azure_ml_holds(page, snap, server, models, workspace, rest):
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
    snap("07-version-alias-set")

    model = rest.get_registered_model(models.gamma)
    assert model.aliases == {"champion": "2", "challenger": "1"}
    assert model.tags == {}  # the aliases' (and the last update's) tags are the plugin's, hidden from MLflow
    container_tags = workspace.state.get_model(WORKSPACE, models.gamma)["properties"]["tags"]
    assert container_tags == {f"{ALIAS_TAG_PREFIX}champion": "2", f"{ALIAS_TAG_PREFIX}challenger": "1",
                              LAST_UPDATED: str(model.last_updated_timestamp)}
    assert rest.get_model_version_by_alias(models.gamma, "challenger").version == "1"

    open_route(page, server, f"models/{models.gamma}", page.get_by_role("heading", name=models.gamma))
    table = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Registered at"))
    expect(cell(table, row_of(table, "Version 1"), "Aliases").get_by_role("status")).to_have_text(
        re.compile(r"@\s*challenger"))
    expect(cell(table, row_of(table, "Version 2"), "Aliases").get_by_role("status")).to_have_text(
        re.compile(r"@\s*champion"))
    snap("08-model-after-ui-edits")


def test_no_traceback_no_failed_api_call_and_browser_stayed_on_loopback(server, browser, models):
    assert plugin_tracebacks(server.log()) == [], server.log_path
    assert browser.api_errors == [], server.log_path
    assert browser.off_loopback == []
