"""search.py on an in-memory registry: grammar, SQL semantics, order, limits, tokens, push-down plans."""

from __future__ import annotations

import re
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchModelUtils

from mlflow_azureml_registry import mapping, search, search_filters, search_pages
from mlflow_azureml_registry.local.state import timestamp

Json = dict[str, Any]


def _container(name: str, tags: Optional[dict] = None, created: int = 0, modified: Optional[int] = None) -> Json:
    return {
        "name": name,
        "properties": {"tags": dict(tags or {}), "description": None},
        "systemData": {
            "createdAt": timestamp(created * 1_000_000),
            "lastModifiedAt": timestamp((created if modified is None else modified) * 1_000_000),
        },
    }


def _version(number: Any, *, tags=None, run_id=None, source="s3://b/x", created: int = 0) -> Json:
    facts = {mapping.PROP_SOURCE: source}
    if run_id is not None:
        facts[mapping.PROP_RUN_ID] = run_id
    return {
        "name": str(number),
        "properties": {"tags": dict(tags or {}), "properties": facts, "stage": "Development"},
        "systemData": {"createdAt": timestamp(created * 1_000_000), "lastModifiedAt": timestamp(created * 1_000_000)},
    }


class FakeRegistry:
    """Models and versions in memory; records every call as the store would turn it into a request."""

    def __init__(self) -> None:
        self.containers: dict[str, Json] = {}
        self.versions: dict[str, list[Json]] = {}
        self.calls: list[tuple] = []

    def add(self, name: str, tags=None, versions=(), created: int = 0) -> None:
        self.containers[name] = _container(name, tags, created)
        self.versions[name] = list(versions)

    def registry(self, scope: str = "fake://ws") -> search.Registry:
        return search.Registry(
            scope=scope,
            get_container=self.get_container,
            list_containers=self.list_containers,
            get_version=self.get_version,
            list_versions=self.list_versions,
            model_entity=lambda c: mapping.registered_model(c),
            version_entity=lambda name, r, c: mapping.model_version(r, name, mapping.aliases_for_version(c, r["name"])),
        )

    def get_container(self, name):
        self.calls.append(("get_container", name))
        return self.containers.get(name)

    def list_containers(self):
        self.calls.append(("list_containers",))
        return list(self.containers.values())

    def get_version(self, name, version):
        self.calls.append(("get_version", name, version))
        return next((v for v in self.versions.get(name, []) if v["name"] == version), None)

    def list_versions(self, name, *, tags=None, properties=None):
        self.calls.append(("list_versions", name, tags, properties))
        return list(self.versions.get(name, []))


@pytest.fixture(autouse=True)
def _fresh_snapshots():
    search.snapshots.clear()
    yield
    search.snapshots.clear()


def _rm(fake, filter_string=None, **kw):
    return search.search_registered_models(
        filter_string, kw.pop("max_results", None), kw.pop("order_by", None), kw.pop("page_token", None),
        fake.registry(**kw),
    )


def _mv(fake, filter_string=None, **kw):
    return search.search_model_versions(
        filter_string, kw.pop("max_results", None), kw.pop("order_by", None), kw.pop("page_token", None),
        fake.registry(**kw),
    )


def _code(call) -> str:
    with pytest.raises(MlflowException) as info:
        call()
    return info.value.error_code, info.value.message


# ----------------------------------------------------------------------------- semantics
def test_like_is_case_sensitive_ilike_is_not_and_wildcards_cover_the_whole_value():
    fake = FakeRegistry()
    for name in ("Alpha", "alpha", "alp_a", "beta-alpha"):
        fake.add(name)
    names = lambda f: [m.name for m in _rm(fake, f)]  # noqa: E731
    assert names("name LIKE 'alp%'") == ["alp_a", "alpha"]
    assert names("name ILIKE 'alp%'") == ["Alpha", "alp_a", "alpha"]
    assert names("name LIKE 'alp_a'") == ["alp_a", "alpha"]
    assert names("name LIKE '%alpha'") == ["alpha", "beta-alpha"]
    assert names("name = 'ALPHA'") == []
    assert names("name != 'alpha'") == ["Alpha", "alp_a", "beta-alpha"]


def test_tags_missing_never_match_and_alias_tags_never_take_part():
    fake = FakeRegistry()
    fake.add("a", {"team": "risk", mapping.alias_tag("champion"): "1"})
    fake.add("b", {"team": "ops"})
    fake.add("c")
    names = lambda f: [m.name for m in _rm(fake, f)]  # noqa: E731
    assert names("tags.team != 'risk'") == ["b"]
    assert names("tags.`mlflow.alias.champion` = '1'") == []
    assert names("tags.`mlflow.alias.champion` LIKE '%'") == []
    assert _rm(fake, "name = 'a'")[0].tags == {"team": "risk"}


@pytest.mark.parametrize("era", [True, False])
def test_prompt_tag_follows_the_installed_mlflow_sql_store(monkeypatch, era):
    monkeypatch.setattr(search_filters, "prompts_known", lambda: era)
    fake = FakeRegistry()
    fake.add("model")
    fake.add("prompt", {search.PROMPT_TAG: "true"})
    names = lambda f: [m.name for m in _rm(fake, f)]  # noqa: E731
    clause = "tags.`mlflow.prompt.is_prompt`"
    if era:  # MLflow >= 2.21: the appended clause is a no-op for models, prompts stay out unless asked for
        assert names(f"{clause} != 'true'") == ["model"]
        assert names(f"{clause} LIKE 'x%'") == ["model"]
        assert names(None) == ["model"]
        assert names(f"{clause} = 'true'") == ["prompt"]
    else:  # MLflow 2.16-2.20: an ordinary tag
        assert names(f"{clause} != 'true'") == []
        assert names(None) == ["model", "prompt"]
        assert names(f"{clause} = 'true'") == ["prompt"]


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(alphabet="aAbB_%-.x1 *[?\\", max_size=6),
    pattern=st.text(alphabet="aAbB_%-.x1 *[?\\", max_size=6),
)
def test_like_and_ilike_agree_with_sqlite(value, pattern):
    """The reference is SQL itself, as MLflow's SQL store runs it on SQLite (case-sensitive LIKE, no escape)."""
    import sqlite3

    with sqlite3.connect(":memory:") as db:
        db.execute("PRAGMA case_sensitive_like = true")
        like, ilike = db.execute("SELECT ? LIKE ?, lower(?) LIKE lower(?)", (value, pattern, value, pattern)).fetchone()
    assert search.Clause("attribute", "name", "LIKE", pattern).test(value) == bool(like)
    assert search.Clause("attribute", "name", "ILIKE", pattern).test(value) == bool(ilike)


def test_version_number_compares_as_integer_and_versions_are_integers():
    """As MLflow's SQL registry hands them over in process: ``int`` versions."""
    fake = FakeRegistry()
    fake.add("m", versions=[_version(n, created=n) for n in (1, 2, 9, 10, 11)])
    found = _mv(fake, "name = 'm' AND version_number > 9", order_by=["version_number ASC"])
    assert [mv.version for mv in found] == [10, 11]
    assert [mv.version for mv in _mv(fake, "version_number >= '10'")] == [11, 10]


def test_non_integer_versions_are_skipped():
    fake = FakeRegistry()
    fake.add("m", versions=[_version(1), _version("cli-made")])
    assert [mv.version for mv in _mv(fake, "name = 'm'")] == [1]


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "filter_string, names",
    [
        ("tags.k IN ('a')", "tag"),
        ("name > 'a'", "Invalid comparator for attribute: >"),  # MLflow's SQL registry's words
        ("name = 'a' OR name = 'b'", "OR"),
        ("tags.k IS NULL", "tags.k"),
        ("run_id = 'x'", "run_id"),
    ],
)
def test_invalid_registered_model_filters_name_the_offending_part(filter_string, names):
    code, message = _code(lambda: _rm(FakeRegistry(), filter_string))
    assert code == "INVALID_PARAMETER_VALUE"
    assert names in message


@pytest.mark.parametrize(
    "filter_string, names",
    [
        ("version_number LIKE '1'", "version_number"),
        ("version_number = 1.5", "1.5"),
        ("version_number = 'abc'", "abc"),
        ("source_path IN ('a')", "source_path"),
        ("tags.k > 'a'", "tag 'k'"),
        ("current_stage = 'None'", "current_stage"),
    ],
)
def test_invalid_version_filters_name_the_offending_part(filter_string, names):
    fake = FakeRegistry()
    code, message = _code(lambda: _mv(fake, filter_string))
    assert code == "INVALID_PARAMETER_VALUE"
    assert names in message
    assert fake.calls == []  # refused before any request


@pytest.mark.parametrize("max_results", [-1, 1001, "10", True, 2.0])
def test_registered_model_max_results_limits(max_results):
    assert _code(lambda: _rm(FakeRegistry(), max_results=max_results))[0] == "INVALID_PARAMETER_VALUE"


def test_registered_model_max_results_zero_is_an_empty_page_that_starts_over():
    """MLflow's SQL registry takes 0 for registered models: nothing, and a token; the token still pages."""
    fake = FakeRegistry()
    for name in ("a", "b", "c"):
        fake.add(name)
    empty = _rm(fake, max_results=0)
    assert list(empty) == [] and empty.token
    assert [m.name for m in _rm(fake, max_results=2, page_token=empty.token)] == ["a", "b"]
    assert _code(lambda: _mv(FakeRegistry(), max_results=0))[0] == "INVALID_PARAMETER_VALUE"  # versions: >= 1


def test_version_max_results_limit_and_defaults():
    assert _code(lambda: _mv(FakeRegistry(), max_results=200_001))[0] == "INVALID_PARAMETER_VALUE"
    fake = FakeRegistry()
    for i in range(150):
        fake.add(f"m{i:03d}")
    first = _rm(fake)
    assert len(first) == 100 and first.token
    assert len(_rm(fake, page_token=first.token)) == 50


@pytest.mark.parametrize(
    "order_by, ok",
    [
        (["name DESC"], True),
        (["timestamp DESC"], True),
        (["last_updated_timestamp"], True),
        (["creation_timestamp ASC"], False),  # MLflow's SQL registry orders models by name and last update only
        (["attribute.name DESC"], False),  # MLflow's SQL registry refuses it too
        (["timestamp", "last_updated_timestamp"], False),
        (["name", "name DESC"], False),
        (["tags.x"], False),
        (["foo"], False),
        ("name", False),
        ([3], False),
    ],
)
def test_registered_model_order_keys(order_by, ok):
    fake = FakeRegistry()
    fake.add("a", created=2)
    fake.add("b", created=1)
    if ok:
        _rm(fake, order_by=order_by)
    else:
        assert _code(lambda: _rm(fake, order_by=order_by))[0] == "INVALID_PARAMETER_VALUE"


def test_orders_and_tie_breakers():
    fake = FakeRegistry()
    fake.add("b", created=1)
    fake.add("a", created=1)
    fake.add("c", created=2)
    assert [m.name for m in _rm(fake, order_by=["timestamp DESC"])] == ["c", "a", "b"]
    assert [m.name for m in _rm(fake, order_by=["timestamp ASC", "name DESC"])] == ["b", "a", "c"]
    fake.add("m", versions=[_version(1, created=5), _version(2, created=3), _version(3, created=5)])
    # MLflow's default: last_updated_timestamp DESC, name ASC, version_number DESC
    assert [mv.version for mv in _mv(fake, "name = 'm'")] == [3, 1, 2]
    assert _code(lambda: _mv(fake, order_by=["run_id"]))[0] == "INVALID_PARAMETER_VALUE"
    assert _code(lambda: _mv(fake, order_by=["version_number", "version_number DESC"]))[0] == "INVALID_PARAMETER_VALUE"


# ----------------------------------------------------------------------------- tokens
@pytest.mark.parametrize("token", ["garbage", "e30", "eyJ2IjogMX0", b"\xff", "eyJvZmZzZXQiOiAzfQ=="])
def test_bad_tokens_are_invalid(token):
    fake = FakeRegistry()
    fake.add("a")
    assert _code(lambda: _rm(fake, page_token=token))[0] == "INVALID_PARAMETER_VALUE"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(["v", "q", "s", "o", "a", "a0", "a1", "a2", "extra"]), value=JSON,
       orders=st.sampled_from([None, ["name DESC"], ["timestamp ASC"]]), snapshot=st.booleans())
def test_mutated_page_tokens_are_invalid_or_valid_never_a_crash(field, value, orders, snapshot):
    """Issue #15: a token whose sort key had the wrong type raised a raw TypeError. Any field of a real
    token replaced by any JSON value: a page, or INVALID_PARAMETER_VALUE, never another exception."""
    import base64
    import json

    fake = FakeRegistry()
    for i, name in enumerate("abcde"):
        fake.add(name, created=i)
    token = _rm(fake, max_results=2, order_by=orders).token
    raw = json.loads(base64.b64decode(token))
    if not snapshot:
        raw["s"] = None  # keyset paging: the sort key is compared with rows
    if field.startswith("a") and len(field) == 2:
        index = int(field[1])
        if index < len(raw["a"]):
            raw["a"][index] = value
    else:
        raw[field] = value
    mutated = base64.b64encode(json.dumps(raw).encode()).decode()
    try:
        _rm(fake, max_results=2, order_by=orders, page_token=mutated)
    except MlflowException as exc:
        assert exc.error_code == "INVALID_PARAMETER_VALUE"


def test_a_token_belongs_to_its_search():
    fake = FakeRegistry()
    for name in "abc":
        fake.add(name)
    token = _rm(fake, max_results=1).token
    assert isinstance(token, bytes)  # as MLflow's SQL store's (SearchUtils.create_page_token)
    code, message = _code(lambda: _rm(fake, "name LIKE '%'", max_results=1, page_token=token))
    assert code == "INVALID_PARAMETER_VALUE" and "another search" in message
    other = _code(lambda: _rm(fake, max_results=1, page_token=token, scope="fake://other"))
    assert other[0] == "INVALID_PARAMETER_VALUE"
    assert _code(lambda: _mv(fake, max_results=1, page_token=token))[0] == "INVALID_PARAMETER_VALUE"



@settings(max_examples=60, deadline=None)
@given(models=st.integers(0, 9), versions=st.integers(1, 4), page=st.integers(0, 5),
       kinds=st.lists(st.sampled_from([bytes, str]), min_size=6, max_size=6), snapshot=st.booleans())
def test_tokens_are_bytes_and_either_form_pages_alike(models, versions, page, kinds, snapshot):
    """In process, every token is ``bytes`` (MLflow's SQL store's type); passed back as ``bytes`` (in process) or
    as text (``mlflow server`` hands the store a ``str``), in any mix, pages walk every row once, in order."""
    fake = FakeRegistry()
    for i in range(models):
        fake.add(f"m{i}", created=i, versions=[_version(n, created=n) for n in range(1, versions + 1)])
    for search_fn, size, expected in (
        (_rm, page, [f"m{i}" for i in range(models)]),
        (_mv, page + 1, sorted(((f"m{i}", n) for i in range(models) for n in range(1, versions + 1)),
                               key=lambda row: (-row[1], row[0]))),
    ):
        search.snapshots.clear()
        seen, token, kind = [], None, iter(kinds * 40)
        while True:
            result = search_fn(fake, max_results=size, page_token=token)
            assert result.token is None or type(result.token) is bytes
            seen += [(e.name, e.version) if isinstance(e, ModelVersion) else e.name for e in result]
            if not result.token or size == 0:
                break
            token = result.token if next(kind) is bytes else result.token.decode("ascii")
            if not snapshot:
                search.snapshots.clear()  # keyset paging, in a process without the snapshot
        assert seen == ([] if size == 0 else expected)
        assert all(type(v) is int for e in seen if isinstance(e, tuple) for v in e[1:])


@pytest.mark.parametrize("given_kind", [bytes, str])
def test_max_results_zero_answers_a_bytes_token_whatever_it_was_given(given_kind):
    fake = FakeRegistry()
    for name in "abc":
        fake.add(name)
    first = _rm(fake, max_results=1).token
    given_token = first if given_kind is bytes else first.decode("ascii")
    again = _rm(fake, max_results=0, page_token=given_token).token
    assert type(again) is bytes and again == first  # the same place, as MLflow's create_page_token(offset)

def test_later_pages_come_from_the_snapshot_without_requests():
    fake = FakeRegistry()
    for name in "abcde":
        fake.add(name)
    first = _rm(fake, max_results=2)
    fake.calls.clear()
    second = _rm(fake, max_results=2, page_token=first.token)
    third = _rm(fake, max_results=2, page_token=second.token)
    assert [m.name for m in first + second + third] == list("abcde") and third.token is None
    assert fake.calls == []


def test_without_the_snapshot_pages_continue_after_the_last_key():
    fake = FakeRegistry()
    for name in ("b", "d", "f"):
        fake.add(name)
    first = _rm(fake, max_results=2)
    assert [m.name for m in first] == ["b", "d"]
    search.snapshots.clear()
    fake.add("a")  # sorts before the page already returned: an offset would repeat "d"
    fake.add("e")
    second = _rm(fake, max_results=2, page_token=first.token)
    assert [m.name for m in second] == ["e", "f"] and second.token is None
    assert fake.calls[-1] == ("list_containers",)


def test_snapshots_are_bounded():
    snaps = search_pages.Snapshots(max_entries=2, max_rows=10, ttl_seconds=60)
    a = snaps.put("q", [1, 2])
    b = snaps.put("q", [3])
    c = snaps.put("q", [4])
    assert snaps.get(a, "q") is None and snaps.get(b, "q") == [3] and snaps.get(c, "q") == [4]
    assert snaps.put("q", list(range(11))) is None
    assert snaps.get(b, "other query") is None


# ----------------------------------------------------------------------------- push-down plans
def test_exact_names_are_fetched_one_by_one_and_impossible_names_cost_nothing():
    fake = FakeRegistry()
    fake.add("a")
    assert [m.name for m in _rm(fake, "name = 'a'")] == ["a"]
    assert fake.calls == [("get_container", "a")]
    fake.calls.clear()
    assert list(_rm(fake, "name = 'no/such name'")) == []
    assert fake.calls == []
    if "name" in getattr(SearchModelUtils, "LIST_SUPPORTED_KEYS", ()):
        fake.calls.clear()
        assert [m.name for m in _rm(fake, "name IN ('a', 'zz') AND name != 'zz'")] == ["a"]
        assert fake.calls == [("get_container", "a")]  # 'zz' is ruled out by name != 'zz' before any request


def test_version_search_lists_only_models_that_can_match():
    fake = FakeRegistry()
    for name in ("keep-1", "keep-2", "other"):
        fake.add(name, versions=[_version(1)])
    found = _mv(fake, "name LIKE 'keep-%'")
    assert sorted(mv.name for mv in found) == ["keep-1", "keep-2"]
    # the container list first; then the two models' versions, read together (in either order)
    assert fake.calls[0][:1] == ("list_containers",)
    assert sorted(c[:2] for c in fake.calls[1:]) == [("list_versions", "keep-1"), ("list_versions", "keep-2")]


def test_version_number_pins_become_gets():
    fake = FakeRegistry()
    fake.add("m", versions=[_version(1), _version(2)])
    assert [mv.version for mv in _mv(fake, "name = 'm' AND version_number = 2")] == [2]
    assert fake.calls == [("get_container", "m"), ("get_version", "m", "2")]


@pytest.mark.parametrize(
    "filter_string, tags, properties",
    [
        ("tags.k = 'v'", "k=v", None),
        ("tags.k LIKE 'v%'", "k", None),
        ("tags.k != 'v' AND tags.j = 'w'", "k,j=w", None),
        ("tags.k = 'a,b'", "k", None),
        ("tags.`a=b` = 'x'", None, None),
        ("tags.k = ' v'", "k", None),
        ("tags.`mlflow.prompt.is_prompt` != 'true'", None, None),
        ("run_id = 'r1'", None, "mlflow.runId=r1"),
        ("run_id IN ('r1', 'r2')", None, "mlflow.runId"),
        ("run_id LIKE 'r%'", None, "mlflow.runId"),
        ("source_path = 's3://x'", None, None),
    ],
)
def test_server_filters(filter_string, tags, properties):
    pushed = search.server_filter(search.version_query(filter_string))
    assert (pushed.versions, pushed.tags, pushed.properties) == (None, tags, properties)


def test_server_filters_only_narrow():
    fake = FakeRegistry()
    fake.add("m", versions=[_version(1, tags={"k": "v"}, run_id="r1"), _version(2, tags={"k": "V"}, run_id="r2")])
    # the fake ignores server filters, like a service that filters approximately: results stay exact
    assert [mv.version for mv in _mv(fake, "tags.k = 'v' AND run_id = 'r1'")] == [1]
    assert fake.calls[-1] == ("list_versions", "m", "k=v", "mlflow.runId=r1")


def test_module_documents_costs():
    assert re.search(r"container pages\) \+ \(version pages", search.__doc__)


@pytest.mark.parametrize("empty", ["", b""])
def test_an_empty_page_token_of_either_type_is_the_first_page(empty):
    """MLflow's SQL store reads an empty token, text or bytes, as the first page (its in-process tokens are bytes)."""
    fake = FakeRegistry()
    for name in ("a", "b", "c"):
        fake.add(name)
    assert [m.name for m in _rm(fake, max_results=2, page_token=empty)] == ["a", "b"]
