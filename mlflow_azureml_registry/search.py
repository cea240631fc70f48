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

Pages. A token is opaque (URL-safe base64 JSON). The first page keeps the ordered result in a small
in-process snapshot (bounded in entries, rows and age) and the token names it, so later pages cost no
request while the snapshot lives. The token also carries the sort key of the last row returned: when
the snapshot is gone (another process, expiry), the search runs again and continues strictly after that
key (keyset paging), never by offset, so rows are neither repeated nor skipped when others are added.
A token belongs to one search (filter, order_by, registry); another search's or a malformed token is
``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils import search_utils as _search_utils
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils

from . import concurrency, mapping, validation
from .validation import MODEL_NAME_RULE
from .validation import clip as _clip
from .validation import short as _short

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

DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]
PROMPT_TAG = "mlflow.prompt.is_prompt"
PROPERTY_RUN_ID = mapping.PROP_RUN_ID

_NAME = re.compile(MODEL_NAME_RULE)
_STRING_COMPARATORS = ("=", "!=", "LIKE", "ILIKE")
_LIST_COMPARATORS = ("IN", "NOT IN")
_NUMERIC_COMPARATORS = ("=", "!=", "<", "<=", ">", ">=")
_VERSION_ATTRIBUTES = ("name", "run_id", "source_path", "version_number")


def prompts_known() -> bool:
    """Whether the installed MLflow knows prompts (2.21+): its SQL store then handles the prompt tag specially."""
    return hasattr(_search_utils, "IS_PROMPT_TAG_KEY")


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def checked_max_results(max_results: Any, default: int, threshold: int, *, minimum: int = 1) -> int:
    """MLflow's SQL store's checks and words. ``minimum``: 0 for registered models, whose SQL search takes
    ``max_results=0`` (an empty page and a token that starts over), 1 for versions."""
    if max_results is None:
        return default
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < minimum:
        raise _invalid(f"Invalid value for max_results. It must be a positive integer, but got {max_results}")
    if max_results > threshold:
        raise _invalid(
            f"Invalid value for request parameter max_results. It must be at most {threshold}, but got value "
            f"{max_results}"
        )
    return max_results


# --------------------------------------------------------------------------- clauses
@functools.lru_cache(maxsize=256)
def _like(pattern: str) -> re.Pattern:
    """SQL LIKE without an escape character: ``%`` any run, ``_`` one character, the rest literal."""
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.DOTALL)


@dataclass(frozen=True)
class Clause:
    kind: str  # "attribute" or "tag"
    key: str
    comparator: str
    value: Any  # str; tuple of str for IN / NOT IN; int for version_number

    def test(self, actual: Any) -> bool:
        if actual is None:  # SQL: a missing tag, a null run id match nothing, != included
            return False
        op, value = self.comparator, self.value
        if op == "=":
            return actual == value
        if op == "!=":
            return actual != value
        if op == "LIKE":
            return _like(value).fullmatch(actual) is not None
        if op == "ILIKE":
            return _like(value.lower()).fullmatch(actual.lower()) is not None
        if op == "IN":
            return actual in value
        if op == "NOT IN":
            return actual not in value
        if op == "<":
            return actual < value
        if op == "<=":
            return actual <= value
        if op == ">":
            return actual > value
        if op == ">=":
            return actual >= value
        raise AssertionError(op)  # pragma: no cover - validated at parse time


def _parse(utils: Any, filter_string: Any) -> list[dict[str, Any]]:
    if filter_string is None or filter_string == "":
        return []
    if not isinstance(filter_string, str):
        raise _invalid(f"Invalid filter {_short(filter_string)}: a filter is a string")
    try:
        return utils.parse_search_filter(filter_string)
    except MlflowException as exc:  # MLflow's message, and where: its messages do not always quote the clause
        try:
            code = ErrorCode.Value(exc.error_code)
        except ValueError:
            code = INVALID_PARAMETER_VALUE
        message = _clip(exc.message, inputs=(filter_string,))
        raise MlflowException(f"{message} (filter {_short(filter_string)})", error_code=code) from None
    except Exception as exc:  # MLflow's parser leaks e.g. a ValueError on "tags.x IS NULL"
        raise _invalid(f"Invalid filter {_short(filter_string)}: {exc or type(exc).__name__}") from None


def _where(kind: str, key: str) -> str:
    return f"tag {key!r}" if kind == "tag" else f"attribute {key!r}"


def _checked_comparator(filter_string: str, kind: str, key: str, comparator: str, allowed: Iterable[str]) -> None:
    """MLflow's SQL store's words ("Invalid comparator for attribute: >"; "Invalid comparator for attribute
    version_number: LIKE"), then what the key takes."""
    allowed = tuple(allowed)
    if comparator not in allowed:
        subject = f"{kind} {key}" if key == "version_number" else kind
        raise _invalid(
            f"Invalid comparator for {subject}: {comparator} "
            f"({_where(kind, key)} takes {', '.join(allowed)}; filter {_short(filter_string)})"
        )


def _checked_text(filter_string: str, kind: str, key: str, comparator: str, value: Any) -> Any:
    if comparator in _LIST_COMPARATORS:
        # MLflow's parser refuses an empty list literal, but MLflow (some versions) drops run ids with capitals from
        # the list it returns (run ids are lowercase), so an empty list here is valid and matches nothing.
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise _invalid(
                f"Invalid value for {_where(kind, key)} {comparator} in filter {_short(filter_string)}: "
                "expected a list of quoted strings"
            )
        return tuple(value)
    if not isinstance(value, str):
        raise _invalid(
            f"Invalid value {_short(value)} for {_where(kind, key)} in filter {_short(filter_string)}: "
            "expected a quoted string"
        )
    return value


def _checked_version_number(filter_string: str, value: Any) -> int:
    number: Optional[int] = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise _invalid(
            f"Invalid value for numeric attribute 'version_number': {_short(value)} "
            f"(an integer; filter {_short(filter_string)})"
        )
    return number


class _Query:
    """A validated filter: clauses as MLflow's SQL store reads them, and what can be pushed down."""

    def __init__(self, clauses: list[Clause]) -> None:
        self.exclude_prompts = False
        if prompts_known():
            asking = _asks_for_prompts(clauses)
            if not asking:
                clauses = [c for c in clauses if not (c.kind == "tag" and c.key == PROMPT_TAG)]
            self.exclude_prompts = not asking
        self.clauses = clauses
        self.name_clauses = [c for c in clauses if c.kind == "attribute" and c.key == "name"]

    def exact(self, key: str) -> Optional[set]:
        """The values an attribute is pinned to by ``=`` / ``IN`` clauses (their intersection), else None."""
        found: Optional[set] = None
        for clause in self.clauses:
            if clause.kind != "attribute" or clause.key != key or clause.comparator not in ("=", "IN"):
                continue
            values = set(clause.value) if clause.comparator == "IN" else {clause.value}
            found = values if found is None else found & values
        return found

    def exact_names(self) -> Optional[list[str]]:
        names = self.exact("name")
        if names is None:
            return None
        return sorted(n for n in names if _NAME.match(n))  # other names cannot exist on Azure ML

    def name_matches(self, name: Any) -> bool:
        return all(c.test(name) for c in self.name_clauses)


def _asks_for_prompts(clauses: list[Clause]) -> bool:
    """MLflow's ``SqlAlchemyStore._is_querying_prompt``: the first prompt-tag clause decides."""
    for c in clauses:
        if c.kind == "tag" and c.key == PROMPT_TAG:
            value = c.value.lower()
            return (c.comparator == "=" and value == "true") or (c.comparator == "!=" and value == "false")
    return False


def model_query(filter_string: Any) -> _Query:
    parsed = _parse(SearchModelUtils, filter_string)
    lists = "name" in getattr(SearchModelUtils, "LIST_SUPPORTED_KEYS", ())
    clauses = []
    for item in parsed:
        kind, key, comparator = item.get("type"), item.get("key"), str(item.get("comparator")).upper()
        if kind == "attribute":
            if key != "name":
                raise _invalid(
                    f"Invalid attribute name: {key} (registered models are searched by name and tags.<key>; "
                    f"filter {_short(filter_string)})"
                )
            allowed = _STRING_COMPARATORS + (_LIST_COMPARATORS if lists else ())
        elif kind == "tag":
            allowed = _STRING_COMPARATORS
        else:
            raise _invalid(f"Invalid token type: {kind} (filter {_short(filter_string)})")
        _checked_comparator(filter_string, kind, key, comparator, allowed)
        value = _checked_text(filter_string, kind, key, comparator, item["value"])
        clauses.append(Clause(kind, key, comparator, value))
    return _Query(clauses)


def version_query(filter_string: Any) -> _Query:
    parsed = _parse(SearchModelVersionUtils, filter_string)
    string_comparators = [
        c for c in ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
        if c in SearchModelVersionUtils.VALID_STRING_ATTRIBUTE_COMPARATORS
    ]
    list_keys = getattr(SearchModelVersionUtils, "LIST_SUPPORTED_KEYS", frozenset({"run_id"}))
    clauses = []
    for item in parsed:
        kind, key, comparator, value = (
            item.get("type"), item.get("key"), str(item.get("comparator")).upper(), item.get("value")
        )
        if kind == "attribute":
            if key not in _VERSION_ATTRIBUTES:
                raise _invalid(
                    f"Invalid attribute name: {key} (model versions are searched by "
                    f"{', '.join(_VERSION_ATTRIBUTES)} and tags.<key>; filter {_short(filter_string)})"
                )
            if key == "version_number":
                _checked_comparator(filter_string, kind, key, comparator, _NUMERIC_COMPARATORS)
                value = _checked_version_number(filter_string, value)
            else:
                allowed = [c for c in string_comparators if c not in _LIST_COMPARATORS or key in list_keys]
                _checked_comparator(filter_string, kind, key, comparator, allowed)
                value = _checked_text(filter_string, kind, key, comparator, value)
        elif kind == "tag":
            _checked_comparator(filter_string, kind, key, comparator, _STRING_COMPARATORS)
            value = _checked_text(filter_string, kind, key, comparator, value)
        else:
            raise _invalid(f"Invalid token type: {kind} (filter {_short(filter_string)})")
        clauses.append(Clause(kind, key, comparator, value))
    return _Query(clauses)


# --------------------------------------------------------------------------- rows
class _ModelRow:
    __slots__ = ("entity", "name", "tags", "creation_timestamp", "last_updated_timestamp")

    def __init__(self, entity: RegisteredModel) -> None:
        self.entity = entity
        self.name = entity.name
        # All tags the entity holds; the mapping already left the reserved alias tags out.
        self.tags = dict(getattr(entity, "_tags", None) or entity.tags or {})
        self.creation_timestamp = entity.creation_timestamp
        self.last_updated_timestamp = entity.last_updated_timestamp

    def attribute(self, key: str) -> Any:
        return self.name


class _VersionRow:
    __slots__ = (
        "entity", "name", "version", "run_id", "source", "tags", "creation_timestamp", "last_updated_timestamp"
    )

    def __init__(self, entity: ModelVersion) -> None:
        self.entity = entity
        self.name = entity.name
        self.version = int(entity.version)
        self.run_id = entity.run_id
        self.source = entity.source
        self.tags = dict(entity.tags or {})
        self.creation_timestamp = entity.creation_timestamp
        self.last_updated_timestamp = entity.last_updated_timestamp

    def attribute(self, key: str) -> Any:
        if key == "version_number":
            return self.version
        if key == "source_path":
            return self.source
        return getattr(self, key)


def _matches(query: _Query, row: Any) -> bool:
    for clause in query.clauses:
        actual = row.tags.get(clause.key) if clause.kind == "tag" else row.attribute(clause.key)
        if not clause.test(actual):
            return False
    return True


# --------------------------------------------------------------------------- order
class _Desc:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v

    def __lt__(self, other: _Desc) -> bool:
        return other.v < self.v

    def __gt__(self, other: _Desc) -> bool:
        return other.v > self.v

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class _Order:
    fields: tuple[tuple[str, bool], ...]  # (row attribute, ascending)

    def values(self, row: Any) -> list[Any]:
        return [getattr(row, f) for f, _ in self.fields]

    def key_of(self, values: list[Any]) -> tuple:
        # SQL (SQLite) order: NULL before any value ascending, after any value descending.
        parts = []
        for (_, ascending), value in zip(self.fields, values):
            part = (0,) if value is None else (1, value)
            parts.append(part if ascending else _Desc(part))
        return tuple(parts)

    def key(self, row: Any) -> tuple:
        return self.key_of(self.values(row))

    def describe(self) -> list[str]:
        return [f"{f} {'ASC' if asc else 'DESC'}" for f, asc in self.fields]


def _order_list(order_by: Any) -> list[str]:
    """``order_by`` as a list: any sequence of strings, including the protobuf repeated field that
    ``mlflow server`` hands the store (it is a ``Sequence``, not a ``list``)."""
    return validation.string_list("order_by", order_by, "'<key> [ASC|DESC]' strings")


def _mlflow_order(parse: Callable[[str], Any], clause: str) -> Any:
    """MLflow's order_by parser, whose messages quote the whole clause: cut to a readable length."""
    try:
        return parse(clause)
    except MlflowException as exc:
        raise _invalid(_clip(exc.message, inputs=(clause,))) from None


def model_order(order_by: Any) -> _Order:
    """MLflow's SQL store's keys (name; timestamp or last_updated_timestamp, the same field) and words;
    ``name ASC`` breaks ties, as there."""
    fields: list[tuple[str, bool]] = []
    for clause in _order_list(order_by):
        token, ascending = _mlflow_order(SearchUtils.parse_order_by_for_search_registered_models, clause)
        if token == "name":
            key = "name"
        elif token in SearchUtils.VALID_TIMESTAMP_ORDER_BY_KEYS:
            key = "last_updated_timestamp"
        else:
            raise _invalid(
                f"Invalid order by key {_short(token)} specified. Valid keys are 'name', 'timestamp' and "
                "'last_updated_timestamp' (the same field), ASC or DESC."
            )
        if key in {f for f, _ in fields}:
            raise _invalid(f"`order_by` contains duplicate fields: {list(order_by)}")
        fields.append((key, ascending))
    if "name" not in {f for f, _ in fields}:
        fields.append(("name", True))
    return _Order(tuple(fields))


def version_order(order_by: Any) -> _Order:
    """MLflow's keys and default; ties broken by ``name ASC`` then ``version_number DESC``."""
    fields: list[tuple[str, bool]] = []
    for clause in _order_list(order_by) or DEFAULT_VERSION_ORDER:
        parse = SearchModelVersionUtils.parse_order_by_for_search_model_versions
        kind, key, ascending = _mlflow_order(parse, clause)
        if kind != "attribute" or key not in SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS:
            raise _invalid(
                f"Invalid order by key {_short(key)} specified. Model versions are ordered by name, version_number, "
                "creation_timestamp or last_updated_timestamp, ASC or DESC."
            )
        field = "version" if key == "version_number" else key
        if field in {f for f, _ in fields}:
            raise _invalid(f"`order_by` contains duplicate fields: {list(order_by)}")
        fields.append((field, ascending))
    present = {f for f, _ in fields}
    if "name" not in present:
        fields.append(("name", True))
    if "version" not in present:
        fields.append(("version", False))
    return _Order(tuple(fields))


# --------------------------------------------------------------------------- page tokens and snapshots
class _Snapshots:
    """Ordered results of recent first pages, so later pages cost no request. Bounded three ways."""

    def __init__(self, max_entries: int = 16, max_rows: int = 1_000_000, ttl_seconds: float = 300.0) -> None:
        self.max_entries, self.max_rows, self.ttl_seconds = max_entries, max_rows, ttl_seconds
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, str, list[Any]]] = OrderedDict()

    def put(self, query: str, rows: list[Any]) -> Optional[str]:
        if len(rows) > self.max_rows:
            return None
        snapshot_id = uuid.uuid4().hex[:16]
        with self._lock:
            self._entries[snapshot_id] = (time.monotonic(), query, rows)
            self._trim()
        return snapshot_id

    def get(self, snapshot_id: Optional[str], query: str) -> Optional[list[Any]]:
        if not snapshot_id:
            return None
        with self._lock:
            self._trim()
            entry = self._entries.get(snapshot_id)
            if entry is None or entry[1] != query:
                return None
            self._entries.move_to_end(snapshot_id)
            return entry[2]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _trim(self) -> None:
        now = time.monotonic()
        for key in [k for k, (t, _, _) in self._entries.items() if now - t > self.ttl_seconds]:
            del self._entries[key]
        total = sum(len(rows) for _, _, rows in self._entries.values())
        while self._entries and (len(self._entries) > self.max_entries or total > self.max_rows):
            _, (_, _, rows) = self._entries.popitem(last=False)
            total -= len(rows)


snapshots = _Snapshots()


def _query_id(kind: str, scope: str, filter_string: Any, order: _Order) -> str:
    text = json.dumps([kind, scope, filter_string or "", order.describe()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fits(field: str, value: Any) -> bool:
    """A token's sort key has the field's type (names are text, the rest integers), or comparing it with a
    row's would raise ``TypeError``."""
    if value is None:
        return True
    if field == "name":
        return isinstance(value, str)
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Token:
    snapshot: Optional[str]
    offset: int
    after: list[Any]

    def encode(self, query: str) -> str:
        body = json.dumps({"v": 1, "q": query, "s": self.snapshot, "o": self.offset, "a": self.after})
        return base64.b64encode(body.encode()).decode("ascii")  # MLflow's SQL store's token encoding

    @classmethod
    def decode(cls, page_token: Any, query: str, order: _Order) -> Optional[_Token]:
        if page_token is None or page_token == "":
            return None
        try:
            if isinstance(page_token, bytes):
                page_token = page_token.decode("ascii")
            decoded = base64.b64decode(page_token)  # as MLflow's SQL store decodes, so the same errors
        except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeError):
            raise _invalid("Invalid page token, could not base64-decode") from None
        try:
            raw = json.loads(decoded)
        except ValueError:
            raise _invalid(f"Invalid page token, decoded value={_short(decoded)}") from None
        try:
            snapshot, offset, after = raw["s"], raw["o"], raw["a"]
            valid = (
                raw.get("v") == 1
                and (snapshot is None or isinstance(snapshot, str))
                and isinstance(offset, int)
                and offset >= 0
                and isinstance(after, list)
                and len(after) in (0, len(order.fields))  # none: from the start
                and all(_fits(field, v) for (field, _), v in zip(order.fields, after))
            )
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, UnicodeError):
            valid = False
        if not valid:
            raise _invalid(f"Invalid page token {_short(page_token)}: not a token this registry returned")
        if raw.get("q") != query:
            raise _invalid(
                "Invalid page token: it continues another search (different filter, order_by or registry)"
            )
        return cls(snapshot, offset, after)


def _paged(
    rows_of: Callable[[], list[Any]], order: _Order, query: str, page_token: Any, max_results: int
) -> tuple[list[Any], Optional[str]]:
    """One page of the ordered rows, from a snapshot when the token names a live one."""
    token = _Token.decode(page_token, query, order)
    if max_results == 0:  # MLflow's SQL search: nothing, and a token that continues where this one did
        return [], page_token or _Token(None, 0, []).encode(query)
    rows = snapshots.get(token.snapshot, query) if token else None
    snapshot_id = token.snapshot if rows is not None else None
    if rows is not None:
        start = token.offset
    else:
        rows = rows_of()
        rows.sort(key=order.key)
        start = 0
        if token is not None and token.after:  # keyset: continue strictly after the last row returned
            after = order.key_of(token.after)
            start = next((i for i, row in enumerate(rows) if order.key(row) > after), len(rows))
    end = start + max_results
    page = rows[start:end]
    if end >= len(rows) or not page:
        return page, None
    if snapshot_id is None:
        snapshot_id = snapshots.put(query, rows)
    next_token = _Token(snapshot_id, end if snapshot_id else 0, order.values(page[-1]))
    return page, next_token.encode(query)


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


def _containers(query: _Query, registry: Registry) -> Iterator[Json]:
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
    query_id = _query_id("registered_models", registry.scope, filter_string, order)

    def rows() -> list[_ModelRow]:
        found = []
        for container in _containers(query, registry):
            row = _ModelRow(registry.model_entity(container))
            if query.exclude_prompts and row.tags.get(PROMPT_TAG) == "true":
                continue
            if _matches(query, row):
                found.append(row)
        return found

    page, token = _paged(rows, order, query_id, page_token, max_results)
    return PagedList([row.entity for row in page], token)


@dataclass(frozen=True)
class ServerFilter:
    """What one model's version request carries: a version to GET, or list filters."""

    versions: Optional[list[int]]
    tags: Optional[str]
    properties: Optional[str]


def _plain(text: Any) -> bool:
    """Safe inside ``k=v,k2`` list filters: non-empty, no separators, no edge whitespace."""
    return isinstance(text, str) and text != "" and text == text.strip() and not set(text) & {",", "="}


def server_filter(query: _Query) -> ServerFilter:
    versions = query.exact("version_number")
    if versions is not None:
        return ServerFilter(sorted(v for v in versions if v >= 1), None, None)
    tags: dict[str, Optional[str]] = {}
    for clause in query.clauses:
        if clause.kind != "tag" or clause.key == PROMPT_TAG or not _plain(clause.key):
            continue
        if clause.comparator == "=" and _plain(clause.value):
            tags[clause.key] = clause.value
        else:
            tags.setdefault(clause.key, None)
    run_ids = query.exact("run_id")
    properties: Optional[str] = None
    if run_ids is not None and len(run_ids) == 1 and _plain(next(iter(run_ids))):
        properties = f"{PROPERTY_RUN_ID}={next(iter(run_ids))}"
    elif any(c.kind == "attribute" and c.key == "run_id" for c in query.clauses):
        properties = PROPERTY_RUN_ID  # every run_id clause needs a run id
    tag_filter = ",".join(k if v is None else f"{k}={v}" for k, v in tags.items()) or None
    return ServerFilter(None, tag_filter, properties)


def search_model_versions(
    filter_string: Any, max_results: Any, order_by: Any, page_token: Any, registry: Registry
) -> PagedList:
    max_results = checked_max_results(
        max_results, SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT, SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD
    )
    query = version_query(filter_string)
    order = version_order(order_by)
    query_id = _query_id("model_versions", registry.scope, filter_string, order)
    pushed = server_filter(query)

    def versions_of(name: str) -> list[Json]:
        if pushed.versions is not None:
            return [r for r in (registry.get_version(name, str(v)) for v in pushed.versions) if r is not None]
        return list(registry.list_versions(name, tags=pushed.tags, properties=pushed.properties))

    def rows() -> list[_VersionRow]:
        found: list[_VersionRow] = []
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
                row = _VersionRow(registry.version_entity(name, resource, container))
                # MLflow's SQL store leaves out every version of a model one of whose versions is a prompt.
                prompt = prompt or (query.exclude_prompts and row.tags.get(PROMPT_TAG) == "true")
                if _matches(query, row):
                    matched.append(row)
            if not prompt:
                found.extend(matched)
        return found

    page, token = _paged(rows, order, query_id, page_token, max_results)
    return PagedList([row.entity for row in page], token)
