"""MLflow's search grammar over Azure ML model assets, answering as MLflow's own SQL registry does.

Semantics. Filters are parsed by the installed MLflow (``SearchModelUtils`` / ``SearchModelVersionUtils``,
so the accepted grammar and most error messages are that MLflow's), then checked with the rules MLflow's
SQL store adds (which comparator each key takes, integer ``version_number`` values) and evaluated here
with SQL semantics: ``=``/``!=``/``IN`` exact, ``LIKE`` case-sensitive, ``ILIKE`` not, ``%`` and ``_``
wildcards over the whole value, a missing tag or run id matches nothing (``!=`` included). Reserved
tags never take part: registered-model tags are the container's tags minus the alias tags
(``mapping.user_tags``). The prompt tag follows the installed MLflow's SQL store: from the MLflow that
knows prompts (2.21) on, a ``tags.`mlflow.prompt.is_prompt``` clause that does not ask *for* prompts
is dropped and prompt-tagged models are left out, which is what makes the clause ``MlflowClient``
appends to every registered-model search a no-op; before, it is an ordinary tag.

Push-down (requests; page size of Azure lists: 100 by default):
- registered models: ``name = 'x'`` / ``name IN (...)`` -> one container GET per name; anything else
  lists every container (the container list has no filters), then filters locally.
- model versions: the candidate models first: pinned names -> one container GET each; otherwise the
  container list, filtered locally by the ``name`` clauses before any version request, so a version
  search costs (container pages) + (version pages of each model that can match). Azure ML has no
  cross-model version list, so a search that does not narrow ``name`` lists versions model by model.
  Per model: ``version_number = N`` -> one version GET; otherwise one paged version list carrying
  ``tags=k=v,k2`` (tag clauses: ``=`` as ``k=v``, others need the key) and ``properties=mlflow.runId[=id]``.
- Server filters only narrow; every clause is evaluated locally again, so an approximate server
  filter can save requests but never change a result. ``$orderBy``/``$top`` are not used: MLflow's
  orders (last update, version number, name) are not the service's creation-time order, so a
  truncated server list could drop rows that belong on the page.

Pages. A token is opaque: base64 JSON, ``bytes`` as MLflow's SQL store gives in process (``mlflow server`` sends
it as text; either is taken back). The first page keeps the ordered result in a small
in-process snapshot (bounded in entries, rows and age) and the token names it, so later pages cost no
request while the snapshot lives. The token also carries the sort key of the last row returned: when
the snapshot is gone (another process, expiry), the search runs again and continues strictly after that
key (keyset paging), never by offset, so rows are neither repeated nor skipped when others are added.
A token belongs to one search (filter, order_by, registry); another search's or a malformed token is
``INVALID_PARAMETER_VALUE`` (MLflow's SQL store would apply its offset to the other search: the documented
difference ``page-token-bound-to-its-search``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.store.entities.paged_list import PagedList

from . import concurrency, mapping
from .search_filters import (  # noqa: F401 - Clause, PROMPT_TAG, server_filter, version_query: part of this module's face
    PROMPT_TAG,
    Clause,
    ModelRow,
    Query,
    VersionRow,
    checked_max_results,
    matches,
    model_query,
    prompts_known,
    server_filter,
    version_query,
)
from .search_pages import model_order, paged, search_identity, snapshots, version_order  # noqa: F401

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

_logger = logging.getLogger(__name__)

Json = dict[str, Any]

# --------------------------------------------------------------------------- the registry seen by search
@dataclass(frozen=True)
class Registry:
    """What search needs from the store: reads (MLflow errors already mapped) and entity building.

    ``get_container``/``get_version`` return None when absent; ``list_versions`` yields nothing for
    an absent model and takes the server-side filters ``tags`` and ``properties``.
    """

    scope: str
    get_container: Callable[[str], Optional[Json]]
    list_containers: Callable[[], Iterable[Json]]
    get_version: Callable[[str, str], Optional[Json]]
    list_versions: Callable[..., Iterable[Json]]
    model_entity: Callable[[Json], RegisteredModel]
    version_entity: Callable[[str, Json, Json], ModelVersion]


def _containers(query: Query, registry: Registry) -> Iterator[Json]:
    names = query.exact_names()
    if names is not None:
        wanted = list(filter(query.name_matches, names))  # e.g. name = 'a' AND name LIKE 'b%': no request
        # exact names are read together (concurrency.py): they do not wait on each other
        found = concurrency.together(*[lambda name=name: registry.get_container(name) for name in wanted])
        for container in found:
            if container is not None and query.name_matches(container.get("name")):
                yield container
        return
    for container in registry.list_containers():
        if query.name_matches(container.get("name")):
            yield container


def search_registered_models(
    filter_string: Any, max_results: Any, order_by: Any, page_token: Any, registry: Registry
) -> PagedList:
    max_results = checked_max_results(
        max_results, SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT, SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
        minimum=0,
    )
    query = model_query(filter_string)
    order = model_order(order_by)
    query_id = search_identity("registered_models", registry.scope, filter_string, order)

    def rows() -> list[ModelRow]:
        found = []
        for container in _containers(query, registry):
            row = ModelRow(registry.model_entity(container))
            if query.exclude_prompts and row.tags.get(PROMPT_TAG) == "true":
                continue
            if matches(query, row):
                found.append(row)
        return found

    page, token = paged(rows, order, query_id, page_token, max_results)
    return PagedList([row.entity for row in page], token)


def search_model_versions(
    filter_string: Any, max_results: Any, order_by: Any, page_token: Any, registry: Registry
) -> PagedList:
    max_results = checked_max_results(
        max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD
    )
    query = version_query(filter_string)
    order = version_order(order_by)
    query_id = search_identity("model_versions", registry.scope, filter_string, order)
    pushed = server_filter(query)

    def versions_of(name: str) -> list[Json]:
        if pushed.versions is not None:
            return [r for r in (registry.get_version(name, str(v)) for v in pushed.versions) if r is not None]
        return list(registry.list_versions(name, tags=pushed.tags, properties=pushed.properties))

    def rows() -> list[VersionRow]:
        found: list[VersionRow] = []
        containers = list(_containers(query, registry))
        # Each model's versions are read together with the others' (bounded by the process's request pool).
        listed = concurrency.together(*[lambda c=c: versions_of(c.get("name")) for c in containers])
        for container, resources in zip(containers, listed):
            name = container.get("name")
            matched, prompt = [], False
            for resource in resources:
                if mapping.version_number(resource) is None:
                    _logger.warning(
                        "Skipping version %r of model %r: MLflow versions are integers", resource.get("name"), name
                    )
                    continue
                row = VersionRow(registry.version_entity(name, resource, container))
                # MLflow's SQL store leaves out every version of a model one of whose versions is a prompt.
                prompt = prompt or (query.exclude_prompts and row.tags.get(PROMPT_TAG) == "true")
                if matches(query, row):
                    matched.append(row)
            if not prompt:
                found.extend(matched)
        return found

    page, token = paged(rows, order, query_id, page_token, max_results)
    return PagedList([row.entity for row in page], token)

