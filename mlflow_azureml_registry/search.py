"""MLflow's search grammar over Azure ML model assets.

Filters are parsed and evaluated with MLflow's own ``SearchModelUtils``/``SearchModelVersionUtils``
(so LIKE, ILIKE, IN and tag semantics and error messages are MLflow's), on entities read from
Azure ML. What Azure ML can narrow server-side is pushed down first: an exact ``name`` becomes one
container GET instead of a full listing. Everything is evaluated locally again, so a server-side
filter can only save requests, never change a result.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils

try:
    from mlflow.store.model_registry import (
        SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
        SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
    )
except ImportError:  # pragma: no cover - older MLflow
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD = 100, 1000
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD = 10000, 200_000

DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]


def checked_max_results(max_results: Any, default: int, threshold: int) -> int:
    if max_results is None:
        return default
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 1:
        raise MlflowException(
            f"Invalid value for max_results. It must be a positive integer, but got {max_results}",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if max_results > threshold:
        raise MlflowException(
            f"Invalid value for request parameter max_results. It must be at most {threshold}, but got value "
            f"{max_results}",
            error_code=INVALID_PARAMETER_VALUE,
        )
    return max_results


def exact_names(parsed: list[dict[str, Any]]) -> Optional[set[str]]:
    """The model names a parsed filter pins down (``name = 'x'`` / ``name IN (...)``), else None."""
    names: Optional[set[str]] = None
    for clause in parsed:
        if clause.get("type") != "attribute" or clause.get("key") != "name":
            continue
        comparator = str(clause.get("comparator")).upper()
        if comparator == "=":
            found = {clause["value"]}
        elif comparator == "IN":
            found = set(clause["value"])
        else:
            continue
        names = found if names is None else names & found
    return names


def page(items: list[Any], page_token: Optional[str], max_results: int) -> PagedList:
    start = SearchUtils.parse_start_offset_from_page_token(page_token)
    end = start + max_results
    token = None
    if end < len(items):
        raw = SearchUtils.create_page_token(end)
        token = raw.decode("ascii") if isinstance(raw, bytes) else raw
    return PagedList(items[start:end], token)


def search_registered_models(
    filter_string: Optional[str],
    max_results: Any,
    order_by: Optional[list[str]],
    page_token: Optional[str],
    *,
    list_models: Callable[[], Iterable[Any]],
    get_models: Callable[[set[str]], Iterable[Any]],
) -> PagedList:
    max_results = checked_max_results(
        max_results, SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD
    )
    parsed = SearchModelUtils.parse_search_filter(filter_string) if filter_string else []
    names = exact_names(parsed)
    candidates = list(get_models(names) if names is not None else list_models())
    matched = SearchModelUtils.filter(candidates, filter_string) if filter_string else candidates
    ordered = SearchModelUtils.sort(matched, order_by)
    return page(ordered, page_token, max_results)


def search_model_versions(
    filter_string: Optional[str],
    max_results: Any,
    order_by: Optional[list[str]],
    page_token: Optional[str],
    *,
    list_versions: Callable[[Optional[set[str]]], Iterable[Any]],
) -> PagedList:
    max_results = checked_max_results(
        max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD
    )
    parsed = SearchModelVersionUtils.parse_search_filter(filter_string) if filter_string else []
    candidates = list(list_versions(exact_names(parsed)))
    # MLflow's filter and sort compare version_number numerically only on int versions (with str they
    # raise or sort lexicographically, in every MLflow); the store returns str versions, like MLflow's REST store.
    for mv in candidates:
        mv._version = int(mv.version)
    try:
        matched = SearchModelVersionUtils.filter(candidates, filter_string) if filter_string else candidates
        ordered = SearchModelVersionUtils.sort(matched, order_by or DEFAULT_VERSION_ORDER)
    finally:
        for mv in candidates:
            mv._version = str(mv.version)
    return page(ordered, page_token, max_results)
