"""The by-design differences from MLflow's SQL registry, each with its reason and the exact answers it allows.

This is the table "Differences from MLflow's registry" of docs/design.md, as code: a test keeps the two the same.
A difference allows a step's answers to differ only as its ``check`` says; any other difference fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .harness import Error, same
from .scenarios import MLFLOW_3


def _refused(code: str) -> Callable[[Any, Any], bool]:
    return lambda ours, theirs: isinstance(ours, Error) and ours.code == code


def _without_dangling_alias(ours: Any, theirs: Any, alias: str) -> bool:
    """MLflow kept ``alias`` of a deleted version: it names a missing version, or the model still lists it."""
    if isinstance(ours, Error) and isinstance(theirs, Error):
        return (ours.code, theirs.code) == ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    if isinstance(ours, dict) and isinstance(theirs, dict) and alias in theirs.get("aliases", {}):
        return same(ours, {**theirs, "aliases": {k: v for k, v in theirs["aliases"].items() if k != alias}})
    return False


@dataclass(frozen=True)
class Difference:
    id: str
    reason: str
    steps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # scenario -> step labels it covers
    check: Callable[[Any, Any], bool] = lambda ours, theirs: False  # (plugin answer, MLflow's) -> allowed


DIFFERENCES = [
    Difference(
        "rename-delete-model",
        "Azure ML model containers cannot be renamed or deleted (the support matrix): the plugin refuses with "
        "NOT_IMPLEMENTED before its store writes anything, and says what to do instead (with MLflow's prompt API a "
        "delete reads the container first: an empty prompt is retired).",
        {"registered_models": ("rename", "delete"), "prompt_delete": ("delete-model-name",)},
        _refused("NOT_IMPLEMENTED"),
    ),
    Difference(
        "azure-name-rule",
        "Azure ML model names match ^[a-zA-Z0-9][a-zA-Z0-9\\-_]{0,254}$; other names MLflow takes are refused with "
        "INVALID_PARAMETER_VALUE quoting the rule, never renamed.",
        {"invalid_input": ("name-with-space",), "prompt_limits": ("name-with-dot",)},
        _refused("INVALID_PARAMETER_VALUE"),
    ),
    Difference(
        "sources-must-exist",
        "The plugin copies a version's files into Azure ML when it creates the version, so a source whose files "
        "cannot be read is refused (RESOURCE_DOES_NOT_EXIST); MLflow's registry only records the source string.",
        {"invalid_input": ("source-not-there",)},
        _refused("RESOURCE_DOES_NOT_EXIST"),
    ),
    Difference(
        "download-uri",
        "get_model_version_download_uri answers where Azure ML keeps the files (an azureml-registry:// datastore "
        "URI with the manifest digest), not the source; loading it needs the plugin and an Azure credential.",
    ),
    Difference(
        "archive-stage-error-code",
        "Archiving into a stage that is not Staging or Production: MLflow's SQL registry raises with no code "
        "(INTERNAL_ERROR, HTTP 500, which its REST client retries); the plugin answers INVALID_PARAMETER_VALUE "
        "with MLflow's words.",
        {"stages": ("archive-to-none",)},
        # Over REST, MLflow's answer is its client giving up on the 500s; in process, MLflow's own words.
        lambda ours, theirs: isinstance(ours, Error) and isinstance(theirs, Error)
        and (ours.code, theirs.code) == ("INVALID_PARAMETER_VALUE", "INTERNAL_ERROR")
        and "because 'None' is not an Active stage. Valid stages are ['Staging', 'Production']" in ours.message
        and (theirs.message == ours.message or theirs.message.startswith("API request to")),
    ),
    Difference(
        "alias-of-deleted-version",
        "Deleting a version drops its aliases, as MLflow 3 does. MLflow 2.16's SQL registry means to, but compares "
        "the alias's integer version with the string it is given, so the alias stays and then names a version "
        "that is gone (RESOURCE_DOES_NOT_EXIST); the plugin answers as MLflow 3 on every MLflow.",
        {"aliases": ("by-alias-of-deleted", "model-after")},
        lambda ours, theirs: not MLFLOW_3 and _without_dangling_alias(ours, theirs, "old"),
    ),
    Difference(
        "user-id",
        "A version's user_id is the identity Azure ML recorded as its creator (systemData.createdBy); MLflow's "
        "registry leaves it empty without authentication. Not compared.",
    ),
    Difference(
        "accidental-inputs",
        "Inputs MLflow takes only by accident are refused with INVALID_PARAMETER_VALUE: a version of True, 1.9 or "
        "'1_0' (int() reads 10), non-ASCII digits, text Azure ML cannot store (NUL, lone surrogates).",
    ),
]


DIFFERENCES += [
    Difference(
        "prompt-delete-with-versions",
        "Azure ML model containers cannot be deleted, so delete_prompt of a prompt that still has versions is refused "
        "(INVALID_PARAMETER_VALUE, in the words MLflow uses for Unity Catalog) and says to delete its versions first; "
        "MLflow's SQL registry deletes it with its versions. An empty prompt is retired: gone for every read and "
        "search, as in MLflow.",
        {"prompt_delete": ("delete-with-versions",)},
        lambda ours, theirs: theirs is None and isinstance(ours, Error) and ours.code == "INVALID_PARAMETER_VALUE"
        and "delete all versions first using delete_prompt_version()" in ours.message,
    ),
    Difference(
        "prompt-numbers-continue",
        "A deleted prompt registered again continues its version numbers (Azure ML never reuses a version number, "
        "and the retired container keeps its count); MLflow's SQL registry starts again at 1.",
        {"prompt_delete": ("register-after-delete",)},
        lambda ours, theirs: isinstance(ours, dict) and isinstance(theirs, dict)
        and type(ours["version"]) is type(theirs["version"]) and int(ours["version"]) > int(theirs["version"])
        and same({**ours, "version": theirs["version"]}, theirs),
    ),
    Difference(
        "prompt-file-held-tags",
        "A prompt value over 1,000 characters (template, response format, model config) is kept in the version's "
        "files, which cannot change once the version exists: setting such a value later is refused "
        "(INVALID_PARAMETER_VALUE: register a new prompt version). MLflow's SQL registry changes the version in place "
        "(its docs call prompt versions immutable). Shorter values, and deleting any, answer as MLflow does.",
        {"prompt_limits": ("set-long-template-tag",)},
        lambda ours, theirs: theirs is None and isinstance(ours, Error) and ours.code == "INVALID_PARAMETER_VALUE"
        and "Register a new prompt version" in ours.message,
    ),
]

DIFFERENCES += [
    Difference(
        "page-token-bound-to-its-search",
        "A page token continues only the search that returned it (same filter, order_by and registry): another "
        "search given it is refused with INVALID_PARAMETER_VALUE ('it continues another search'). MLflow's SQL "
        "registry reads only an offset from its token and applies it to whatever search it is given (past the end: "
        "an empty page); the plugin's token holds a keyset and a snapshot of its own search, which applied to "
        "another would silently skip or repeat rows.",
        {"search_models": ("token-of-another-search",), "search_versions": ("token-of-another-search",)},
        # MLflow: the other search from offset 3 (models) or 4 (versions), both past its end here: an empty last page
        # (no token in process; through mlflow server, the empty token its REST client reads).
        lambda ours, theirs: isinstance(ours, Error) and ours.code == "INVALID_PARAMETER_VALUE"
        and "it continues another search" in ours.message
        and theirs in ({"items": [], "token": None}, {"items": [], "token": "empty str"}),
    ),
]


def allowed(scenario: str) -> dict[str, Callable[[Any, Any], bool]]:
    """step label -> check, for one scenario."""
    return {step: d.check for d in DIFFERENCES for step in d.steps.get(scenario, ())}
