"""Checks done before any network call, with MLflow's error codes and messages that say what to do.

Where MLflow has a rule (tag keys and values, aliases) its own validator runs, so the plugin refuses what
MLflow's SQL registry refuses. On top of that, the plugin refuses what MLflow lets through only by accident
(``$`` in its patterns matches before a trailing newline; its checks assume ``str`` and fail with
``TypeError`` otherwise) and what cannot travel to Azure ML intact (NUL characters, lone surrogates, which
no UTF-8 request body can carry).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

MODEL_NAME_RULE = r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$"
_MODEL_NAME = re.compile(MODEL_NAME_RULE)
_VERSION = re.compile(r"\s*[+-]?[0-9]+\s*")
MAX_VERSION = 2**63 - 1  # MLflow's SQL registries keep versions in a 64-bit integer column
_ALIAS = re.compile(r"[\w\-]+")
_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}")  # MLflow's run id rule, matched in full
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSENDABLE = re.compile(r"[\x00\ud800-\udfff]")
MAX_DESCRIPTION_LENGTH = 100_000
"""Azure ML documents no limit, and every later update of the model sends the description back (GET + PUT);
100,000 characters is MLflow 3's tag value limit (MLflow's SQL registries keep at most 5,000)."""


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def short(value: Any) -> str:
    """``repr`` cut to a readable length: an echoed input (a 1 MB page token, filter or URI) must not flood the
    message; how long it was is said instead."""
    text = repr(value)
    if len(text) <= 300:
        return text
    size = f"{len(value)} chars" if isinstance(value, (str, bytes)) else f"{len(text)} chars as text"
    return f"{text[:240]}... ({size})"


def clip(message: str, limit: int = 1500, inputs: tuple = ()) -> str:
    """Someone else's message (MLflow's validators quote what they were given, whole): each long input in
    ``inputs`` quoted short where it appears, then the message cut to ``limit`` characters as a last resort."""
    for value in inputs:
        if isinstance(value, str) and len(value) > 300:
            message = message.replace(value, short(value).strip("'\""))
    return message if len(message) <= limit else f"{message[:limit]}... ({len(message)} chars)"


_short = short


def _mlflow_first(check: Callable[..., Any], *values: Any, hint: str = "") -> None:
    """Run MLflow's own validator, so that what MLflow's SQL registry refuses is refused in its words, then
    ``hint`` (its validators assume strings: others are left to the plugin's checks, which always follow)."""
    if not all(v is None or isinstance(v, str) for v in values):
        return
    try:
        check(*values)
    except MlflowException as exc:
        # MLflow's validators quote the whole input: a 1 MB value must not make a 1 MB message.
        message = clip(exc.message, inputs=values)
        raise MlflowException(f"{message} {hint}".rstrip(), error_code=INVALID_PARAMETER_VALUE) from None


def model_name(name: Any) -> str:
    """A registered model name Azure ML accepts (``MODEL_NAME_RULE``); an empty one in MLflow's words."""
    from mlflow.utils.validation import _validate_model_name

    rule = (
        f"Invalid registered model name {_short(name)}: Azure ML model names must match {MODEL_NAME_RULE} "
        "(letters, digits, '-' and '_', starting with a letter or digit, at most 255 characters)."
    )
    _mlflow_first(_validate_model_name, name, hint=rule)
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise _invalid(rule)
    return name


def version(value: Any) -> str:
    """A version as MLflow names it, an integer; return the canonical string form.

    Not-an-integer is refused in MLflow's words ("Parameter 'version' must be an integer, got 'abc'."). An
    integer that names no version (0, -1) is left to the service, which answers not found, as MLflow does.
    ``int(value)`` alone (what MLflow's SQL registry does) would also take ``True``, ``1.9``, ``"1_0"`` (= 10)
    and non-ASCII digits, and fail with ``TypeError`` on ``None``: none of those names a version.
    """
    from mlflow.utils.validation import _validate_model_version

    integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    number = int(value) if integer or (isinstance(value, str) and _VERSION.fullmatch(value)) else None
    if number is None:
        if isinstance(value, str):
            _mlflow_first(_validate_model_version, value)
        raise _invalid(f"Parameter 'version' must be an integer, got {_short(value)}.")
    if abs(number) > MAX_VERSION:
        raise _invalid(f"Parameter 'version' must be at most {MAX_VERSION}, got {_short(value)}")
    return str(number)


def _sendable(what: str, value: str) -> None:
    bad = _UNSENDABLE.search(value)
    if bad:
        kind = "a NUL character" if bad.group() == "\x00" else "a lone surrogate (not valid Unicode)"
        raise _invalid(f"{what} {_short(value)} contains {kind} at position {bad.start()}; Azure ML cannot store it")


def tag_key(key: Any) -> str:
    """A tag key MLflow users may set: a non-empty string Azure ML can store, not one the plugin keeps for
    itself (``mlflow.alias.*`` holds aliases, ``mlflow.lastUpdated`` MLflow's last-update time)."""
    from mlflow.utils.validation import _validate_tag_name

    from .mapping import ALIAS_TAG_PREFIX, PROMPT_REPLACED_TAG, RETIRED_TAG, STAGE_TAG, is_reserved_tag

    _mlflow_first(_validate_tag_name, key)
    if not isinstance(key, str) or not key.strip():
        raise _invalid(f"Tag key must be a non-empty string, got {_short(key)}")
    bad = _CONTROL.search(key)
    if bad:
        raise _invalid(f"Tag key {_short(key)} contains the control character {bad.group()!r}")
    _sendable("Tag key", key)
    if is_reserved_tag(key):
        if key.startswith(ALIAS_TAG_PREFIX):
            what = f"keys starting with {ALIAS_TAG_PREFIX!r} hold model aliases; use set_registered_model_alias."
        elif key == STAGE_TAG:
            what = "it holds a registry version's stage; use transition_model_version_stage instead."
        elif key == RETIRED_TAG:
            what = "it marks a deleted prompt; choose another key."
        elif key == PROMPT_REPLACED_TAG:
            what = "it names a prompt version's values its files no longer hold; choose another key."
        else:
            what = "the plugin keeps MLflow's last-update time there; choose another key."
        raise _invalid(f"Tag key {key!r} is reserved: {what}")
    return key


def _tags(tags: Any, check: Callable[[str, Any], None]) -> dict[str, str]:
    result: dict[str, str] = {}
    if tags is None:
        return result
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
        raise _invalid(f"Tags must be a list of tag entities, got {_short(tags)}")
    for tag in tags:
        if not hasattr(tag, "key") or not hasattr(tag, "value"):
            raise _invalid(f"Tags must be tag entities with a key and a value, got {_short(tag)}")
        _mlflow_first(check, tag.key, tag.value if tag.value is None else str(tag.value))
        tag_key(tag.key)
        value = "" if tag.value is None else str(tag.value)
        _sendable(f"Value of tag {tag.key!r}", value)
        result[tag.key] = value
    return result


def registered_model_tags(tags: Any) -> dict[str, str]:
    from mlflow.utils.validation import _validate_registered_model_tag

    return _tags(tags, _validate_registered_model_tag)


def model_version_tags(tags: Any) -> dict[str, str]:
    from mlflow.utils.validation import _validate_model_version_tag

    return _tags(tags, _validate_model_version_tag)


def alias(name: Any, *, lookup: bool = False) -> str:
    """MLflow's alias rules (``^[\\w\\-]*$``, at most 255; not ``latest`` or ``v<digits>``), matched in full.

    ``lookup``: the name is only read, so ``latest`` passes where the installed MLflow resolves ``@latest``
    to the highest version (MLflow 3 does; older MLflow refuses it).
    """
    from mlflow.utils import validation as mlflow_validation

    if name is None or name == "":
        raise _invalid("Registered model alias name cannot be empty.")
    if not isinstance(name, str):
        raise _invalid(f"Registered model alias name must be a string, got {_short(name)}")
    if not _ALIAS.fullmatch(name):
        raise _invalid(
            f"Invalid alias name: {_short(name)}. Names may only contain alphanumerics, underscores (_), "
            "and dashes (-)."
        )
    if lookup and is_latest_alias(name):
        return name
    mlflow_validation._validate_model_alias_name(name)
    reserved = getattr(mlflow_validation, "_validate_model_alias_name_reserved", None)
    if reserved is not None:
        reserved(name)
    return name


def is_latest_alias(name: str) -> bool:
    """``@latest`` (any case), when the installed MLflow gives it a meaning."""
    from mlflow.utils import validation as mlflow_validation

    latest = getattr(mlflow_validation, "_REGISTERED_MODEL_ALIAS_LATEST", None)
    return latest is not None and name.lower() == latest


def description(value: Any) -> Optional[str]:
    """None (no description) or a string Azure ML can store; refused before a GET + PUT that would fail."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"Description must be a string, got {type(value).__name__} {_short(value)}")
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise _invalid(
            f"Description is {len(value)} characters long; at most {MAX_DESCRIPTION_LENGTH} are accepted "
            "(keep long documentation as a file in the model folder)."
        )
    _sendable("Description", value)
    return value


def sequence(what: str, values: Any, items: str) -> list[Any]:
    """A list parameter (``order_by``, ``stages``) as a ``list``; None is empty.

    Any ``Sequence`` is taken, not only ``list``: ``mlflow server`` passes the store the request's protobuf
    repeated field (``RepeatedScalarContainer``, a registered ``Sequence``), and callers pass tuples.
    A bare string is refused: iterating it would give its characters. Raises ``INVALID_PARAMETER_VALUE``.
    """
    if values is None:
        return []
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise _invalid(f"Parameter {what!r} must be a list of {items}, got {_short(values)}")
    return list(values)


def string_list(what: str, values: Any, items: str) -> list[str]:
    """:func:`sequence`, whose entries must be strings."""
    entries = sequence(what, values, items)
    for value in entries:
        if not isinstance(value, str):
            raise _invalid(f"Parameter {what!r} must be a list of {items}, got the entry {_short(value)}")
    return entries


def stages(values: Any) -> Optional[list[str]]:
    """``get_latest_versions(stages=...)``: None or a list of MLflow stage names (any case).

    An empty list is None (all stages), as in MLflow, whose server passes an empty repeated field."""
    from .stages import canonical

    names = sequence("stages", values, "stage names")
    return [canonical(stage) for stage in names] if names else None


def run_id(value: Any) -> Optional[str]:
    """The run a version comes from: None, or an MLflow run id (it is stored and shown as a run link)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _RUN_ID.fullmatch(value):
        raise _invalid(
            f"Invalid run_id {_short(value)}: run ids are letters, digits, '_' and '-', starting with a letter "
            "or digit (at most 256 characters)."
        )
    return value


def optional_text(what: str, value: Any) -> Optional[str]:
    """Free text stored as a version property (``run_link``, ``model_id``): None or a sendable string."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"Parameter {what!r} must be a string, got {type(value).__name__} {_short(value)}")
    _sendable(f"Parameter {what!r}", value)
    return value
