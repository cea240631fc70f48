"""The conformance harness (tests/conformance/harness.py) tells answers apart by their Python types: in process,
MLflow's SQL registry hands over ``int`` versions and alias targets, ``bytes`` page tokens and alias-free
``latest_versions``, and an answer that differs only in those must fail the differential."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.entities.model_registry.registered_model_alias import RegisteredModelAlias
from mlflow.store.entities.paged_list import PagedList

from tests.conformance.harness import Registry, compare, same


def _registry(kind: str = "mlflow") -> Registry:
    return Registry(kind, client=None, source="runs:/r/model", run_id="r")


def _version(number, aliases=None) -> ModelVersion:
    return ModelVersion("m", number, 1, 1, current_stage="None", aliases=aliases)


LEAVES = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3) | st.binary(max_size=3)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_an_answer_is_the_same_as_itself(value):
    assert same(value, value)


def _retyped(value):
    """The same answer with one leaf's type changed the way a REST hop or a careless mapping would."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if value is None:
        return []
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return tuple(value) if not value else [_retyped(value[0]), *value[1:]]
    if isinstance(value, dict) and value:
        key = next(iter(value))
        return {**value, key: _retyped(value[key])}
    return None  # an empty dict: None


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_an_answer_with_one_value_of_another_type_is_not_the_same(value):
    assert not same(_retyped(value), value)


@given(number=st.integers(1, 10**6))
def test_a_version_number_as_text_is_another_answer(number):
    r = _registry()
    assert same(r.normal(_version(number)), r.normal(_version(number)))
    assert not same(r.normal(_version(str(number))), r.normal(_version(number)))


@given(number=st.integers(1, 10**6), token=st.binary(min_size=1, max_size=8).map(lambda b: b.hex().encode()))
def test_page_tokens_and_alias_targets_compare_by_type(number, token):
    r = _registry()
    assert not same(r.normal(PagedList([], token.decode())), r.normal(PagedList([], token)))
    assert same(r.normal(PagedList([], token + b"x")), r.normal(PagedList([], token)))  # each registry's own text
    assert not same(r.normal(PagedList([], token)), r.normal(PagedList([], None)))
    assert not same(r.normal(PagedList([], "")), r.normal(PagedList([], None)))  # REST's "no token" is not None
    with_int = RegisteredModel("m", aliases=[RegisteredModelAlias("a", number)])
    with_text = RegisteredModel("m", aliases=[RegisteredModelAlias("a", str(number))])
    assert not same(r.normal(with_text), r.normal(with_int))


def test_latest_versions_with_aliases_are_another_answer():
    r = _registry()
    plain = RegisteredModel("m", latest_versions=[_version(1)])
    aliased = RegisteredModel("m", latest_versions=[_version(1, aliases=["champion"])])
    assert not same(r.normal(aliased), r.normal(plain))
    empty = RegisteredModel("m", latest_versions=[])
    assert not same(r.normal(RegisteredModel("m", latest_versions=None)), r.normal(empty))


def test_compare_reports_a_type_only_difference_with_both_answers():
    ours, theirs = _registry("plugin"), _registry("mlflow")
    ours.step("get", lambda c: _version("1"))
    theirs.step("get", lambda c: _version(1))
    (problem,) = compare(ours, theirs, {})
    assert "'version': '1'" in problem and "'version': 1" in problem
