"""Checks done before any network call, with MLflow's error codes and messages that say what to do."""

from __future__ import annotations

import re
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

MODEL_NAME_RULE = r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$"
_MODEL_NAME = re.compile(MODEL_NAME_RULE)


def model_name(name: Any) -> str:
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise MlflowException(
            f"Invalid registered model name {name!r}: Azure ML model names must match {MODEL_NAME_RULE} "
            "(letters, digits, '-' and '_', starting with a letter or digit, at most 255 characters).",
            error_code=INVALID_PARAMETER_VALUE,
        )
    return name


def version(value: Any) -> str:
    """MLflow versions are positive integers; return the canonical string form."""
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or number < 1:
        raise MlflowException(
            f"Parameter 'version' must be a positive integer, got {value!r}", error_code=INVALID_PARAMETER_VALUE
        )
    return str(number)


def tag_key(key: Any, *, reserved_prefix: str = "") -> str:
    if not isinstance(key, str) or not key.strip():
        raise MlflowException(f"Tag key must be a non-empty string, got {key!r}", error_code=INVALID_PARAMETER_VALUE)
    if reserved_prefix and key.startswith(reserved_prefix):
        raise MlflowException(
            f"Tag key {key!r} is reserved: keys starting with {reserved_prefix!r} hold model aliases; "
            "use set_registered_model_alias instead.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    return key


def _tags(tags: Any, check: Any, reserved_prefix: str = "") -> dict[str, str]:
    result: dict[str, str] = {}
    for tag in tags or []:
        tag_key(tag.key, reserved_prefix=reserved_prefix)
        value = "" if tag.value is None else str(tag.value)
        check(tag.key, value)
        result[tag.key] = value
    return result


def registered_model_tags(tags: Any) -> dict[str, str]:
    from mlflow.utils.validation import _validate_registered_model_tag

    from .mapping import ALIAS_TAG_PREFIX

    return _tags(tags, _validate_registered_model_tag, ALIAS_TAG_PREFIX)


def model_version_tags(tags: Any) -> dict[str, str]:
    from mlflow.utils.validation import _validate_model_version_tag

    return _tags(tags, _validate_model_version_tag)


def alias(name: Any) -> str:
    """MLflow's alias rules (``^[\\w\\-]*$``, at most 255; not ``latest`` or ``v<digits>``)."""
    from mlflow.utils import validation as mlflow_validation

    mlflow_validation._validate_model_alias_name(name)
    reserved = getattr(mlflow_validation, "_validate_model_alias_name_reserved", None)
    if reserved is not None:
        reserved(name)
    if not name:
        raise MlflowException("Alias must be a non-empty string", error_code=INVALID_PARAMETER_VALUE)
    return name
