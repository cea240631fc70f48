"""Search on the local workspace answers exactly as MLflow's own SQL registry (SQLite) of the same MLflow.

Hypothesis draws models, versions, tags and filters; both registries get the same data in the same order
(one model and its versions at a time, a few ms apart, so that every timestamp order agrees), then every
drawn search is run page by page at the same ``max_results`` until the token runs out, and the ordered
``(name, version)`` pages, or the error codes, must be equal. Each example works under a fresh name
prefix and ANDs ``name LIKE '<prefix>%'`` into its filters: the local workspace is shared by the session.
"""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils

from mlflow_azureml_registry import search

RM_NAME_LISTS = "name" in getattr(SearchModelUtils, "LIST_SUPPORTED_KEYS", ())
MV_LIST_KEYS = sorted(getattr(SearchModelVersionUtils, "LIST_SUPPORTED_KEYS", {"run_id"}))
MV_NOT_IN = "NOT IN" in SearchModelVersionUtils.VALID_STRING_ATTRIBUTE_COMPARATORS

NAME_CHARS = "aAbB0_-"
TAG_KEYS = ["t1", "T1", "team", "k.x"]
TAG_VALUES = ["a", "A", "ab", "aB", "a%b", "a_b", "x,y", "k=v", " a", "", "b-1", "a+b", "a b", "x&y", "a#b", "x%41"]
PATTERN_VALUES = ["a%", "%b", "_", "%", "A%", "a_", "%,%", "%=%", "%a%"]
RUN_IDS = [None, "r1", "r2", "R1", "r_1"]
SOURCES = ["s3://b/m1", "s3://b/M1", "s3://b/m_2", "dbfs:/p%q"]

RM_ORDERS = [None, [], ["name DESC"], ["last_updated_timestamp DESC"], ["timestamp ASC", "name DESC"], ["name ASC"]]
MV_ORDERS = [
    None,
    ["version_number ASC"],
    ["name DESC", "version_number ASC"],
    ["creation_timestamp ASC"],
    ["last_updated_timestamp DESC", "name DESC"],
    ["version_number DESC", "name ASC"],
    ["name ASC"],
]

RM_INVALID = [
    "tags.t1 IN ('a')",
    "name > 'a'",
    "run_id = 'x'",
    "name = a",
    "name = 'a' OR name = 'b'",
    "tags.t1 < 'a'",
    "creation_timestamp > 1",
    "foo.bar = 'x'",
] + ([] if RM_NAME_LISTS else ["name IN ('a')", "name NOT IN ('a')"])
MV_INVALID = [
    "version_number LIKE '1'",
    "source_path IN ('a')",
    "tags.t1 IN ('a')",
    "run_id = 3",
    "current_stage = 'None'",
    "name = 'a' OR name = 'b'",
    "version_number IN (1)",
    "tags.t1 > 'a'",
] + ([] if "name" in MV_LIST_KEYS else ["name IN ('a')"]) + ([] if MV_NOT_IN else ["run_id NOT IN ('a')"])

_counter = itertools.count()


@pytest.fixture(scope="module")
def registries(workspace, tmp_path_factory):
    """(ours, sqlite) MlflowClients, their stores, and a tiny model folder for our version creates."""
    import mlflow

    tmp = tmp_path_factory.mktemp("sqlite-registry")
    folder = tmp / "model"
    folder.mkdir()
    (folder / "weights.txt").write_text("w")
    sqlite = mlflow.MlflowClient(registry_uri=f"sqlite:///{tmp}/reg.db")
    sqlite.search_registered_models(max_results=1)  # creates the schema once
    ours = mlflow.MlflowClient(registry_uri=workspace.registry_uri())
    return ours, sqlite, folder


def _quote_key(key: str) -> str:
    return f"`{key}`" if "." in key else key


def _list(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


@st.composite
def datasets(draw):
    n = draw(st.integers(1, 4))
    suffixes = draw(
        st.lists(st.text(NAME_CHARS, min_size=1, max_size=3), min_size=n, max_size=n, unique_by=str.lower)
    )
    tags = st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=2)
    version = st.tuples(st.sampled_from(RUN_IDS), st.sampled_from(SOURCES), tags)
    return [(suffix, draw(tags), draw(st.lists(version, max_size=3))) for suffix in suffixes]


def _create(registries, data) -> tuple[str, list[str]]:
    ours, sqlite, folder = registries
    prefix = f"q{next(_counter)}{uuid.uuid4().hex[:6]}"
    our_store = ours._get_registry_client().store
    sql_store = sqlite._get_registry_client().store
    names = []
    for suffix, model_tags, versions in data:
        name = f"{prefix}-{suffix}"
        names.append(name)
        for store in (our_store, sql_store):
            store.create_registered_model(name, tags=[RegisteredModelTag(k, v) for k, v in model_tags.items()])
            time.sleep(0.003)
        for run_id, source, version_tags in versions:
            tags = [ModelVersionTag(k, v) for k, v in version_tags.items()]
            our_store.create_model_version(name, source, run_id=run_id, tags=tags, local_model_path=str(folder))
            time.sleep(0.003)
            sql_store.create_model_version(name, source, run_id=run_id, tags=tags)
            time.sleep(0.003)
    return prefix, names


def _name_value(draw, names, prefix):
    name = draw(st.sampled_from(names))
    return draw(
        st.sampled_from(
            [
                name,
                name.swapcase(),
                name.upper(),
                f"{prefix}-%",
                f"{name[:-1]}%",
                f"%{name[-1]}",
                f"{name[:-1]}_",
                f"{prefix}-_",
                f"%{name[-1].swapcase()}%",
                prefix + "-zz",
            ]
        )
    )


def _tag_clause(draw, comparators=("=", "!=", "LIKE", "ILIKE")) -> str:
    key = draw(st.sampled_from(TAG_KEYS + ["absent"]))
    comparator = draw(st.sampled_from(comparators))
    pool = TAG_VALUES + (PATTERN_VALUES if "LIKE" in comparator else [])
    return f"tags.{_quote_key(key)} {comparator} '{draw(st.sampled_from(pool))}'"


def _name_clause(draw, names, prefix, lists: bool, not_in: bool = True) -> str:
    comparators = ["=", "!=", "LIKE", "ILIKE"] + (["IN"] + (["NOT IN"] if not_in else []) if lists else [])
    comparator = draw(st.sampled_from(comparators))
    if comparator in ("IN", "NOT IN"):
        count = draw(st.integers(1, 3))
        return f"name {comparator} {_list([_name_value(draw, names, prefix) for _ in range(count)])}"
    return f"name {comparator} '{_name_value(draw, names, prefix)}'"


def _rm_filter(draw, names, prefix):
    if draw(st.integers(0, 9)) == 0:
        return f"name LIKE '{prefix}%' AND " + draw(st.sampled_from(RM_INVALID)), True
    clauses = [f"name LIKE '{prefix}%'"]
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            clauses.append(_name_clause(draw, names, prefix, RM_NAME_LISTS))
        else:
            clauses.append(_tag_clause(draw))
    return " AND ".join(draw(st.permutations(clauses))), False


def _mv_filter(draw, names, prefix):
    if draw(st.integers(0, 9)) == 0:
        return f"name LIKE '{prefix}%' AND " + draw(st.sampled_from(MV_INVALID)), True
    clauses = [f"name LIKE '{prefix}%'"]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["name", "run_id", "source_path", "version_number", "tag"]))
        if kind == "name":
            clauses.append(_name_clause(draw, names, prefix, "name" in MV_LIST_KEYS, MV_NOT_IN))
        elif kind == "run_id":
            comparator = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE", "IN"] + (["NOT IN"] if MV_NOT_IN else [])))
            values = [v for v in RUN_IDS if v] + (["r%", "R%", "r_", "%1"] if "LIKE" in comparator else [])
            if comparator in ("IN", "NOT IN"):
                chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
                clauses.append(f"run_id {comparator} {_list(chosen)}")
            else:
                clauses.append(f"run_id {comparator} '{draw(st.sampled_from(values))}'")
        elif kind == "source_path":
            comparator = draw(st.sampled_from(["=", "!=", "LIKE", "ILIKE"]))
            values = SOURCES + (["s3://b/m%", "%1", "dbfs:/p_q", "S3://%"] if "LIKE" in comparator else [])
            clauses.append(f"source_path {comparator} '{draw(st.sampled_from(values))}'")
        elif kind == "version_number":
            comparator = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]))
            number = draw(st.integers(0, 4))
            clauses.append(f"version_number {comparator} {number}")
        else:
            clauses.append(_tag_clause(draw))
    return " AND ".join(draw(st.permutations(clauses))), False


def _pages(call, max_results, *, key, drop_snapshots=False):
    """Every page as its keys and its next token's type (MLflow's SQL registry: ``bytes``), or the error code."""
    pages, token = [], None
    try:
        while True:
            page = call(max_results=max_results, page_token=token)
            pages.append(([key(item) for item in page], None if page.token is None else type(page.token).__name__))
            token = page.token
            if not token:
                return pages
            assert len(pages) < 50
            if drop_snapshots:
                search.snapshots.clear()  # the next page continues by keyset, not from the snapshot
    except MlflowException as exc:
        return exc.error_code


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def _compare(ours_search, sqlite_search, filter_string, invalid, order_by, max_results, drop, key):
    expected = _pages(lambda **kw: sqlite_search(filter_string, order_by=order_by, **kw), max_results, key=key)
    got = _pages(
        lambda **kw: ours_search(filter_string, order_by=order_by, **kw), max_results, key=key, drop_snapshots=drop
    )
    assert got == expected, (filter_string, order_by, max_results)
    if invalid:
        assert got == "INVALID_PARAMETER_VALUE", filter_string


@SETTINGS
@given(data=st.data(), dataset=datasets())
def test_registered_model_search_equals_sqlite_registry(registries, data, dataset):
    ours, sqlite, _ = registries
    prefix, names = _create(registries, dataset)
    for _ in range(4):
        filter_string, invalid = data.draw(st.composite(lambda draw: _rm_filter(draw, names, prefix))())
        _compare(
            ours.search_registered_models,
            sqlite.search_registered_models,
            filter_string,
            invalid,
            data.draw(st.sampled_from(RM_ORDERS)),
            data.draw(st.integers(1, 4)),
            data.draw(st.booleans()),
            key=lambda model: model.name,
        )


@SETTINGS
@given(data=st.data(), dataset=datasets())
def test_model_version_search_equals_sqlite_registry(registries, data, dataset):
    ours, sqlite, _ = registries
    prefix, names = _create(registries, dataset)
    for _ in range(4):
        filter_string, invalid = data.draw(st.composite(lambda draw: _mv_filter(draw, names, prefix))())
        _compare(
            ours.search_model_versions,
            sqlite.search_model_versions,
            filter_string,
            invalid,
            data.draw(st.sampled_from(MV_ORDERS)),
            data.draw(st.integers(1, 5)),
            data.draw(st.booleans()),
            key=lambda mv: (mv.name, mv.version),  # with its type: int, as MLflow's SQL registry's
        )
