"""Search filters: MLflow's filter grammar checked as MLflow's SQL store checks it, clauses evaluated with SQL
semantics over model and version rows, and the part of a filter Azure ML's list calls can carry. The semantics
and the push-down are described in :mod:`.search`."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode
from mlflow.utils import search_utils as _search_utils
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils

from . import mapping
from .validation import MODEL_NAME_RULE
from .validation import clip as _clip
from .validation import short as _short

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


def invalid_parameter(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def checked_max_results(max_results: Any, default: int, threshold: int, *, minimum: int = 1) -> int:
    """MLflow's SQL store's checks and words. ``minimum``: 0 for registered models, whose SQL search takes
    ``max_results=0`` (an empty page and a token that starts over), 1 for versions."""
    if max_results is None:
        return default
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < minimum:
        raise invalid_parameter(f"Invalid value for max_results. It must be a positive integer, but got {max_results}")
    if max_results > threshold:
        raise invalid_parameter(
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
        raise invalid_parameter(f"Invalid filter {_short(filter_string)}: a filter is a string")
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
        raise invalid_parameter(f"Invalid filter {_short(filter_string)}: {exc or type(exc).__name__}") from None


def _where(kind: str, key: str) -> str:
    return f"tag {key!r}" if kind == "tag" else f"attribute {key!r}"


def _checked_comparator(filter_string: str, kind: str, key: str, comparator: str, allowed: Iterable[str]) -> None:
    """MLflow's SQL store's words ("Invalid comparator for attribute: >"; "Invalid comparator for attribute
    version_number: LIKE"), then what the key takes."""
    allowed = tuple(allowed)
    if comparator not in allowed:
        subject = f"{kind} {key}" if key == "version_number" else kind
        raise invalid_parameter(
            f"Invalid comparator for {subject}: {comparator} "
            f"({_where(kind, key)} takes {', '.join(allowed)}; filter {_short(filter_string)})"
        )


def _checked_text(filter_string: str, kind: str, key: str, comparator: str, value: Any) -> Any:
    if comparator in _LIST_COMPARATORS:
        # MLflow's parser refuses an empty list literal, but MLflow (some versions) drops run ids with capitals from
        # the list it returns (run ids are lowercase), so an empty list here is valid and matches nothing.
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise invalid_parameter(
                f"Invalid value for {_where(kind, key)} {comparator} in filter {_short(filter_string)}: "
                "expected a list of quoted strings"
            )
        return tuple(value)
    if not isinstance(value, str):
        raise invalid_parameter(
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
        raise invalid_parameter(
            f"Invalid value for numeric attribute 'version_number': {_short(value)} "
            f"(an integer; filter {_short(filter_string)})"
        )
    return number


class Query:
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


def model_query(filter_string: Any) -> Query:
    parsed = _parse(SearchModelUtils, filter_string)
    lists = "name" in getattr(SearchModelUtils, "LIST_SUPPORTED_KEYS", ())
    clauses = []
    for item in parsed:
        kind, key, comparator = item.get("type"), item.get("key"), str(item.get("comparator")).upper()
        if kind == "attribute":
            if key != "name":
                raise invalid_parameter(
                    f"Invalid attribute name: {key} (registered models are searched by name and tags.<key>; "
                    f"filter {_short(filter_string)})"
                )
            allowed = _STRING_COMPARATORS + (_LIST_COMPARATORS if lists else ())
        elif kind == "tag":
            allowed = _STRING_COMPARATORS
        else:
            raise invalid_parameter(f"Invalid token type: {kind} (filter {_short(filter_string)})")
        _checked_comparator(filter_string, kind, key, comparator, allowed)
        value = _checked_text(filter_string, kind, key, comparator, item["value"])
        clauses.append(Clause(kind, key, comparator, value))
    return Query(clauses)


def version_query(filter_string: Any) -> Query:
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
                raise invalid_parameter(
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
            raise invalid_parameter(f"Invalid token type: {kind} (filter {_short(filter_string)})")
        clauses.append(Clause(kind, key, comparator, value))
    return Query(clauses)


# --------------------------------------------------------------------------- rows
class ModelRow:
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


class VersionRow:
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


def matches(query: Query, row: Any) -> bool:
    for clause in query.clauses:
        actual = row.tags.get(clause.key) if clause.kind == "tag" else row.attribute(clause.key)
        if not clause.test(actual):
            return False
    return True



@dataclass(frozen=True)
class ServerFilter:
    """What one model's version request carries: a version to GET, or list filters."""

    versions: Optional[list[int]]
    tags: Optional[str]
    properties: Optional[str]


def _plain(text: Any) -> bool:
    """Safe inside ``k=v,k2`` list filters: non-empty, no separators, no edge whitespace."""
    return isinstance(text, str) and text != "" and text == text.strip() and not set(text) & {",", "="}


def server_filter(query: Query) -> ServerFilter:
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


