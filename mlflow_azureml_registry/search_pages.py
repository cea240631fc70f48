"""Search order and pages: MLflow's ``order_by`` over rows, page tokens, and the in-process snapshots that make
later pages cost no request. The paging rules are described in :mod:`.search`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional

from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchModelVersionUtils, SearchUtils

from . import validation
from .search_filters import invalid_parameter
from .validation import clip as _clip
from .validation import short as _short

DEFAULT_VERSION_ORDER = ["last_updated_timestamp DESC", "name ASC", "version_number DESC"]

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
class Order:
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
        raise invalid_parameter(_clip(exc.message, inputs=(clause,))) from None


def model_order(order_by: Any) -> Order:
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
            raise invalid_parameter(
                f"Invalid order by key {_short(token)} specified. Valid keys are 'name', 'timestamp' and "
                "'last_updated_timestamp' (the same field), ASC or DESC."
            )
        if key in {f for f, _ in fields}:
            raise invalid_parameter(f"`order_by` contains duplicate fields: {list(order_by)}")
        fields.append((key, ascending))
    if "name" not in {f for f, _ in fields}:
        fields.append(("name", True))
    return Order(tuple(fields))


def version_order(order_by: Any) -> Order:
    """MLflow's keys and default; ties broken by ``name ASC`` then ``version_number DESC``."""
    fields: list[tuple[str, bool]] = []
    for clause in _order_list(order_by) or DEFAULT_VERSION_ORDER:
        parse = SearchModelVersionUtils.parse_order_by_for_search_model_versions
        kind, key, ascending = _mlflow_order(parse, clause)
        if kind != "attribute" or key not in SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS:
            raise invalid_parameter(
                f"Invalid order by key {_short(key)} specified. Model versions are ordered by name, version_number, "
                "creation_timestamp or last_updated_timestamp, ASC or DESC."
            )
        field = "version" if key == "version_number" else key
        if field in {f for f, _ in fields}:
            raise invalid_parameter(f"`order_by` contains duplicate fields: {list(order_by)}")
        fields.append((field, ascending))
    present = {f for f, _ in fields}
    if "name" not in present:
        fields.append(("name", True))
    if "version" not in present:
        fields.append(("version", False))
    return Order(tuple(fields))


# --------------------------------------------------------------------------- page tokens and snapshots
class Snapshots:
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


snapshots = Snapshots()


def search_identity(kind: str, scope: str, filter_string: Any, order: Order) -> str:
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
class PageToken:
    snapshot: Optional[str]
    offset: int
    after: list[Any]

    def encode(self, query: str) -> bytes:
        """Base64 of the token's JSON, as ``bytes``: MLflow's SQL store's encoding and type
        (``SearchUtils.create_page_token``). ``mlflow server`` sends it on as text; :meth:`decode` takes both."""
        body = json.dumps({"v": 1, "q": query, "s": self.snapshot, "o": self.offset, "a": self.after})
        return base64.b64encode(body.encode())

    @classmethod
    def decode(cls, page_token: Any, query: str, order: Order) -> Optional[PageToken]:
        """The token of :meth:`encode`, as ``bytes`` (in process) or ``str`` (through ``mlflow server``); None for
        no token. A malformed token, or one of another search (filter, order_by, registry), is
        ``INVALID_PARAMETER_VALUE``: its keyset or snapshot would skip or repeat rows of this one."""
        if page_token is None or page_token in ("", b""):  # MLflow's SQL store: the first page
            return None
        try:
            if isinstance(page_token, bytes):
                page_token = page_token.decode("ascii")
            decoded = base64.b64decode(page_token)  # as MLflow's SQL store decodes, so the same errors
        except (ValueError, TypeError, AttributeError, binascii.Error, UnicodeError):
            raise invalid_parameter("Invalid page token, could not base64-decode") from None
        try:
            raw = json.loads(decoded)
        except ValueError:
            raise invalid_parameter(f"Invalid page token, decoded value={_short(decoded)}") from None
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
            raise invalid_parameter(f"Invalid page token {_short(page_token)}: not a token this registry returned")
        if raw.get("q") != query:
            raise invalid_parameter(
                "Invalid page token: it continues another search (different filter, order_by or registry)"
            )
        return cls(snapshot, offset, after)


def paged(
    rows_of: Callable[[], list[Any]], order: Order, query: str, page_token: Any, max_results: int
) -> tuple[list[Any], Optional[bytes]]:
    """One page of the ordered rows, from a snapshot when the token names a live one, and the next page's token
    (``bytes``, as MLflow's SQL store's) or None."""
    token = PageToken.decode(page_token, query, order)
    if max_results == 0:  # MLflow's SQL search: nothing, and a token that continues where this one did
        return [], PageToken(None, 0, []).encode(query) if token is None else token.encode(query)
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
    next_token = PageToken(snapshot_id, end if snapshot_id else 0, order.values(page[-1]))
    return page, next_token.encode(query)


