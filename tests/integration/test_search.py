"""Search on the local workspace: what each search shape costs in control-plane requests, what reaches the
server as a filter, page tokens, reserved tags. Equality with MLflow's SQL registry: test_search_equivalence.py."""

from __future__ import annotations

import math

import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchModelUtils

from mlflow_azureml_registry import mapping, search

pytestmark = pytest.mark.emulator_only("seeds models straight into the emulator's state and counts its requests")

WS = "local-ws"


def _seed(workspace, name, versions=(), tags=None):
    """A container and versions written straight into the emulator's state (what the store would write)."""
    workspace.state.put_model(WS, name, {"tags": dict(tags or {})})
    for number, version_tags, run_id in versions:
        facts = {mapping.PROP_SOURCE: f"s3://bucket/{name}/{number}"}
        if run_id:
            facts[mapping.PROP_RUN_ID] = run_id
        workspace.state.put_version(
            WS,
            name,
            str(number),
            {"tags": dict(version_tags or {}), "properties": facts, "modelUri": "azureml://x", "stage": "Development"},
        )


def _calls(workspace, mark):
    return [(r["method"], r["path"].split(f"/workspaces/{WS}/", 1)[-1], r["query"]) for r in workspace.requests[mark:]]


@pytest.fixture
def models(workspace, model_name):
    """Three models under one prefix: <p>-a (3 versions), <p>-b (1 version), <p>-c (none)."""
    _seed(workspace, f"{model_name}-a", [(1, {"k": "v"}, "r1"), (2, {"k": "w"}, "r2"), (3, {}, None)], {"team": "x"})
    _seed(workspace, f"{model_name}-b", [(1, {"k": "v"}, "r1")])
    _seed(workspace, f"{model_name}-c")
    return model_name


def test_exact_name_is_one_container_get(workspace, client, models):
    mark = len(workspace.requests)
    found = client.search_registered_models(f"name = '{models}-a'")
    assert [m.name for m in found] == [f"{models}-a"]
    assert [(m, p) for m, p, _ in _calls(workspace, mark)] == [("GET", f"models/{models}-a")]
    mark = len(workspace.requests)
    assert list(client.search_registered_models(f"name = '{models}-zz'")) == []
    assert len(_calls(workspace, mark)) == 1
    mark = len(workspace.requests)
    assert list(client.search_registered_models("name = 'not a valid/name'")) == []
    assert _calls(workspace, mark) == []  # a name Azure ML cannot hold is not asked for


@pytest.mark.skipif("name" not in getattr(SearchModelUtils, "LIST_SUPPORTED_KEYS", ()), reason="MLflow < 3")
def test_name_in_is_one_get_per_name(workspace, client, models):
    mark = len(workspace.requests)
    found = client.search_registered_models(f"name IN ('{models}-a', '{models}-b', '{models}-zz')")
    assert [m.name for m in found] == [f"{models}-a", f"{models}-b"]
    assert [m for m, _, _ in _calls(workspace, mark)] == ["GET"] * 3


def test_like_search_lists_the_containers_once_and_later_pages_are_free(workspace, client, models):
    total = len(workspace.state.workspace(WS).models)
    mark = len(workspace.requests)
    first = client.search_registered_models(f"name LIKE '{models}-%'", max_results=2)
    assert [m.name for m in first] == [f"{models}-a", f"{models}-b"] and first.token
    calls = _calls(workspace, mark)
    assert {(m, p) for m, p, _ in calls} == {("GET", "models")}
    assert len(calls) == math.ceil(total / workspace.state.page_size)
    assert first[0].tags == {"team": "x"}
    mark = len(workspace.requests)
    second = client.search_registered_models(f"name LIKE '{models}-%'", max_results=2, page_token=first.token)
    assert [m.name for m in second] == [f"{models}-c"] and not second.token
    assert _calls(workspace, mark) == []


def test_version_search_by_name_lists_only_that_model(workspace, client, models):
    mark = len(workspace.requests)
    found = client.search_model_versions(f"name = '{models}-a'")
    assert [mv.version for mv in found] == [3, 2, 1]  # last_updated_timestamp DESC
    assert [(m, p) for m, p, _ in _calls(workspace, mark)] == [
        ("GET", f"models/{models}-a"),
        ("GET", f"models/{models}-a/versions"),
    ]


def test_version_number_is_one_version_get(workspace, client, models):
    mark = len(workspace.requests)
    found = client.search_model_versions(f"name = '{models}-a' AND version_number = 2")
    assert [mv.version for mv in found] == [2]
    assert [(m, p) for m, p, _ in _calls(workspace, mark)] == [
        ("GET", f"models/{models}-a"),
        ("GET", f"models/{models}-a/versions/2"),
    ]


def test_version_search_with_name_like_lists_only_matching_models(workspace, client, models):
    mark = len(workspace.requests)
    found = client.search_model_versions(f"name LIKE '{models}-%' AND name != '{models}-b'")
    assert sorted((mv.name, mv.version) for mv in found) == [(f"{models}-a", v) for v in (1, 2, 3)]
    listed = [p for m, p, _ in _calls(workspace, mark) if p.endswith("/versions")]
    assert sorted(listed) == [f"models/{models}-a/versions", f"models/{models}-c/versions"]


def test_tags_and_run_id_reach_the_server_and_are_checked_again(workspace, client, models):
    mark = len(workspace.requests)
    found = client.search_model_versions(f"name LIKE '{models}-%' AND tags.k = 'v' AND run_id = 'r1'")
    assert sorted((mv.name, mv.version) for mv in found) == [(f"{models}-a", 1), (f"{models}-b", 1)]
    queries = [q for _, p, q in _calls(workspace, mark) if p.endswith("/versions")]
    assert queries and all(q["tags"] == "k=v" and q["properties"] == "mlflow.runId=r1" for q in queries)
    assert all(q["listViewType"] == "All" for q in queries)
    found = client.search_model_versions(f"name = '{models}-a' AND tags.k ILIKE 'V'")
    assert [mv.version for mv in found] == [1]


def test_version_paging_and_tokens(workspace, client, models):
    pages, token = [], None
    while True:
        page = client.search_model_versions(f"name LIKE '{models}-%'", order_by=["version_number ASC"], max_results=2,
                                            page_token=token)
        pages.append([(mv.name[-1], mv.version) for mv in page])
        token = page.token
        if not token:
            break
        assert isinstance(token, bytes)  # as MLflow's SQL registry's, in process
        token = token.decode("ascii")  # as mlflow server hands it to the store: text (bytes: the other tests)
    assert pages == [[("a", 1), ("b", 1)], [("a", 2), ("a", 3)]]
    for bad in ("nonsense", "eyJvZmZzZXQiOiAyfQ=="):
        with pytest.raises(MlflowException) as info:
            client.search_model_versions(f"name LIKE '{models}-%'", page_token=bad)
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_alias_tags_never_leak(workspace, client, models):
    name = f"{models}-a"
    client.set_registered_model_alias(name, "champion", "2")
    assert workspace.state.get_model(WS, name)["properties"]["tags"][mapping.alias_tag("champion")] == "2"
    assert list(client.search_registered_models(f"name = '{name}' AND tags.`mlflow.alias.champion` = '2'")) == []
    assert list(client.search_registered_models(f"name = '{name}' AND tags.`mlflow.alias.champion` LIKE '%'")) == []
    (model,) = client.search_registered_models(f"name = '{name}'")
    assert model.tags == {"team": "x"} and model.aliases == {"champion": 2}
    (mv,) = client.search_model_versions(f"name = '{name}' AND version_number = 2")
    assert mv.aliases == []  # as MLflow's SQL registry: version search results carry no aliases
    assert client.get_model_version(name, "2").aliases == ["champion"]


def test_versions_azure_ml_users_made_without_integer_numbers_are_skipped(workspace, client, models):
    workspace.state.put_version(WS, f"{models}-b", "cli-made", {"modelUri": "azureml://x"})
    assert [mv.version for mv in client.search_model_versions(f"name = '{models}-b'")] == [1]


def test_default_version_order_is_last_update_first(workspace, client, models):
    name = f"{models}-a"
    client.update_model_version(name, "1", description="touched")  # version 1 is now the last updated
    client.set_model_version_tag(name, "2", "tagged", "yes")  # a tag is no update, as in MLflow
    found = client.search_model_versions(f"name = '{name}'")
    assert [mv.version for mv in found] == [1, 3, 2]
    stamps = [mv.last_updated_timestamp for mv in found]
    assert stamps == sorted(stamps, reverse=True)


def test_invalid_filter_is_refused_before_any_request(workspace, client):
    mark = len(workspace.requests)
    with pytest.raises(MlflowException) as info:
        client.search_model_versions("version_number LIKE '1'")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE" and "version_number" in info.value.message
    assert _calls(workspace, mark) == []


def test_snapshot_miss_falls_back_to_keyset(workspace, client, models):
    first = client.search_registered_models(f"name LIKE '{models}-%'", max_results=1)
    search.snapshots.clear()
    _seed(workspace, f"{models}-0")  # sorts first: an offset would repeat "-a"
    second = client.search_registered_models(f"name LIKE '{models}-%'", max_results=1, page_token=first.token)
    assert [m.name for m in first] + [m.name for m in second] == [f"{models}-a", f"{models}-b"]
