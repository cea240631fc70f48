"""Bad input through MLflow's public APIs: always an ``MlflowException`` with the right code, never a change.

Issue #7 (reliability and security). A model with two versions, tags, an alias and a stage is registered
first; then every input of the corpus below must fail with the MLflow error code MLflow's own SQL registry
uses for it (``INVALID_PARAMETER_VALUE`` malformed, ``RESOURCE_DOES_NOT_EXIST`` absent, ``NOT_IMPLEMENTED``
unsupported), a message that names the problem, and no change to anything registered (checked on the local
workspace's state after every case). Inputs marked ``offline`` must be refused before the plugin sends any
request. Hypothesis then feeds arbitrary text to the same entry points.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.emulator_only(
    "checks on the emulator's state and request log that a refused input changed nothing and that offline"
    " inputs sent no request"
)

WS = "local-ws"
WRITES = {"PUT", "POST", "DELETE", "PATCH"}
INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
UNSUPPORTED = "NOT_IMPLEMENTED"
DENIED = "PERMISSION_DENIED"
NO_RUN = "0123456789abcdef0123456789abcdef"


@dataclass
class Ctx:
    """What a case needs: the seeded model and the workspace around it."""

    client: Any
    store: Any  # the plugin's store, for inputs MLflow's client cannot pass through (it fails first)
    name: str  # registered, versions 1 (alias "champion") and 2 (Staging)
    missing: str  # a valid name no model has
    folder: Path  # a small model folder
    empty_folder: Path
    file: Path
    registry: str  # azureml-registry://subscriptions/<s>/resourceGroups/<rg>/workspaces/local-ws
    sub: str
    rg: str

    def datastore_uri(self, tail: str, workspace: str = WS) -> str:
        return f"azureml-registry://subscriptions/{self.sub}/resourceGroups/{self.rg}/workspaces/{workspace}/{tail}"

    def create(self, source: Any, **kwargs: Any) -> Any:
        return self.client.create_model_version(self.name, source, **kwargs)


@dataclass(frozen=True)
class Bad:
    call: Callable[[Ctx], Any]
    code: str
    fragment: str
    offline: bool = False  # refused before the plugin sends anything


def bad(
    case_id: str, call: Callable[[Ctx], Any], code: str, fragment: str, *, offline: bool = False, defect: str = ""
) -> Any:
    """One corpus entry; ``defect`` marks a known plugin defect outside this module's files (strict xfail)."""
    marks = [pytest.mark.xfail(strict=True, reason=defect)] if defect else []
    return pytest.param(Bad(call, code, fragment, offline), id=case_id, marks=marks)


def _download(uri: str) -> Callable[[Ctx], Any]:
    def call(c: Ctx) -> Any:
        import tempfile

        import mlflow

        return mlflow.artifacts.download_artifacts(uri.format(c=c), dst_path=tempfile.mkdtemp())

    return call


def _load(uri: str) -> Callable[[Ctx], Any]:
    def call(c: Ctx) -> Any:
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(uri.format(c=c))

    return call


def _registry(uri: str) -> Callable[[Ctx], Any]:
    """A client built from a registry URI (``{reg}`` is the good one, ``{sub}``/``{rg}`` its parts)."""

    def call(c: Ctx) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(registry_uri=uri.format(reg=c.registry, sub=c.sub, rg=c.rg)).get_registered_model(c.name)

    return call


def _global_registry(uri: str) -> Callable[[Ctx], Any]:
    def call(c: Ctx) -> Any:
        import mlflow

        try:
            mlflow.set_registry_uri(uri)
            return mlflow.MlflowClient().get_registered_model(c.name)
        finally:
            mlflow.set_registry_uri(c.registry)

    return call


def _folder_with(c: Ctx, kind: str) -> str:
    """A copy of the case's model folder with one thing the folder policy refuses."""
    import os
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="bad-folder-")) / "model"
    shutil.copytree(c.folder, folder)
    if kind == "outside-link":
        (folder / "innocent.txt").symlink_to("/etc/hostname")
    elif kind == "loop":
        (folder / "self").symlink_to(".")
    elif kind == "fifo":
        os.mkfifo(folder / "pipe")
    elif kind == "backslash":
        (folder / "a\\b.txt").write_text("x")
    elif kind == "newline":
        (folder / "a\nb.txt").write_text("x")
    return str(folder)


def _register(source: str, name: str = "{c.name}") -> Callable[[Ctx], Any]:
    def call(c: Ctx) -> Any:
        import mlflow

        return mlflow.register_model(source.format(c=c), name.format(c=c))

    return call


def _tampered_token(c: Ctx) -> Any:
    """A real page token with its offset made negative."""
    token = c.client.search_model_versions(f"name = '{c.name}'", max_results=1).token
    raw = json.loads(base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4)))  # bytes, as MLflow's SQL store's
    raw["o"] = -5
    forged = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")
    return c.client.search_model_versions(f"name = '{c.name}'", max_results=1, page_token=forged)


def _token_of_another_search(c: Ctx) -> Any:
    token = c.client.search_model_versions(f"name = '{c.name}'", max_results=1).token
    return c.client.search_model_versions(f"name = '{c.name}' AND version_number >= 1", max_results=1, page_token=token)


LONG = "a" * 256
NAME_RULE = "Invalid registered model name"
# MLflow's own words, which differ: "Parameter 'version' must be an integer" (3.x), "Model version ..." (2.16).
VERSION_RULE = "must be an integer"

NAMES = [
    bad("create-empty", lambda c: c.client.create_registered_model(""), INVALID, NAME_RULE, offline=True),
    bad("create-none", lambda c: c.client.create_registered_model(None), INVALID, NAME_RULE, offline=True),
    bad("create-256-chars", lambda c: c.client.create_registered_model(LONG), INVALID, "at most 255", offline=True),
    bad("create-unicode", lambda c: c.client.create_registered_model("模型"), INVALID, NAME_RULE, offline=True),
    bad("create-nul", lambda c: c.client.create_registered_model("a\x00b"), INVALID, NAME_RULE, offline=True),
    bad("create-newline", lambda c: c.client.create_registered_model("a\nb"), INVALID, NAME_RULE, offline=True),
    bad("create-trailing-newline", lambda c: c.client.create_registered_model("ab\n"), INVALID, NAME_RULE,
        offline=True),
    bad("create-space", lambda c: c.client.create_registered_model("a b"), INVALID, NAME_RULE, offline=True),
    bad("create-leading-space", lambda c: c.client.create_registered_model(" ab"), INVALID, NAME_RULE, offline=True),
    bad("create-slash", lambda c: c.client.create_registered_model("a/b"), INVALID, NAME_RULE, offline=True),
    bad("create-encoded-slash", lambda c: c.client.create_registered_model("a%2Fb"), INVALID, NAME_RULE,
        offline=True),
    bad("create-dotdot", lambda c: c.client.create_registered_model(".."), INVALID, NAME_RULE, offline=True),
    bad("create-leading-dash", lambda c: c.client.create_registered_model("-ab"), INVALID, NAME_RULE, offline=True),
    bad("create-leading-underscore", lambda c: c.client.create_registered_model("_ab"), INVALID, NAME_RULE,
        offline=True),
    bad("create-dot", lambda c: c.client.create_registered_model("a.b"), INVALID, NAME_RULE, offline=True),
    bad("create-colon", lambda c: c.client.create_registered_model("a:b"), INVALID, NAME_RULE, offline=True),
    bad("create-int", lambda c: c.client.create_registered_model(42), INVALID, NAME_RULE, offline=True),
    bad("create-description-int", lambda c: c.client.create_registered_model(c.missing, description=5), INVALID,
        "Description must be a string", offline=True),
    bad("create-existing", lambda c: c.client.create_registered_model(c.name), EXISTS, "already exists"),
    bad("get-missing", lambda c: c.client.get_registered_model(c.missing), MISSING, "not found"),
    bad("get-bad-name", lambda c: c.client.get_registered_model("bad name"), INVALID, NAME_RULE, offline=True),
    bad("register-model-bad-name", _register("{c.folder}", "bad name"), INVALID, NAME_RULE, offline=True),
]

VERSIONS = [
    bad(f"version-{label}", (lambda v: lambda c: c.client.get_model_version(c.name, v))(value), INVALID, fragment,
        offline=True)
    for label, value, fragment in [
        ("text", "abc", VERSION_RULE),
        ("decimal-text", "1.5", VERSION_RULE),
        ("float", 1.5, VERSION_RULE),
        ("huge", 10**30, "at most"),
        ("huge-text", "9" * 40, "at most"),
        ("none", None, VERSION_RULE),
        ("true", True, VERSION_RULE),
        ("empty", "", VERSION_RULE),
        ("exponent", "1e3", VERSION_RULE),
        ("arabic-digit", "\u0661", VERSION_RULE),
        ("underscore", "1_0", VERSION_RULE),
        ("hex", "0x1", VERSION_RULE),
        ("dotdot", "..", VERSION_RULE),
    ]
] + [
    # Integers that name no version: not found, as in MLflow's registry (the service is asked).
    bad("version-zero", lambda c: c.client.get_model_version(c.name, 0), MISSING, "version=0) not found"),
    bad("version-negative", lambda c: c.client.get_model_version(c.name, -1), MISSING, "version=-1) not found"),
    bad("version-missing", lambda c: c.client.get_model_version(c.name, 99), MISSING, "version=99) not found"),
    bad("version-of-missing-model", lambda c: c.client.get_model_version(c.missing, 1), MISSING, "not found"),
    bad("delete-version-text", lambda c: c.client.delete_model_version(c.name, "abc"), INVALID, VERSION_RULE,
        offline=True),
    # An integer that names no version is not found, as in MLflow's registry.
    bad("update-version-zero", lambda c: c.client.update_model_version(c.name, 0, "x"), MISSING,
        "version=0) not found"),
    bad("download-uri-negative", lambda c: c.client.get_model_version_download_uri(c.name, -5), MISSING,
        "version=-5) not found"),
]

STAGE_RULE = "Invalid Model Version stage"
STAGES = [
    bad(f"transition-{label}", (lambda s: lambda c: c.client.transition_model_version_stage(c.name, 1, s))(stage),
        INVALID, STAGE_RULE, offline=True)
    for label, stage in [
        ("unknown", "Prod"),
        ("azure-default", "Development"),
        ("azure-custom", "QA"),
        ("prefix", "archive"),
        ("nul", "Staging\x00"),
    ]
] + [
    bad("transition-archive-inactive",
        lambda c: c.client.transition_model_version_stage(c.name, 1, "Archived", archive_existing_versions=True),
        INVALID, "not an Active stage", offline=True),
    bad("transition-missing-version", lambda c: c.client.transition_model_version_stage(c.name, 99, "Staging"),
        MISSING, "not found"),
    bad("transition-none-store", lambda c: c.store.transition_model_version_stage(c.name, 1, None, False), INVALID,
        STAGE_RULE, offline=True),
    bad("latest-unknown-stage", lambda c: c.client.get_latest_versions(c.name, ["Bogus"]), INVALID, STAGE_RULE,
        offline=True),
    bad("latest-stage-string", lambda c: c.client.get_latest_versions(c.name, "Production"), INVALID,
        "list of stage names", offline=True),
    bad("latest-stage-none-item", lambda c: c.client.get_latest_versions(c.name, [None]), INVALID, STAGE_RULE,
        offline=True),
    bad("latest-missing-model", lambda c: c.client.get_latest_versions(c.missing), MISSING, "not found"),
]

ALIAS_CHARS = "may only contain"
ALIASES = [
    bad(f"alias-{label}", (lambda a: lambda c: c.client.set_registered_model_alias(c.name, a, 1))(alias), INVALID,
        fragment, offline=True)
    for label, alias, fragment in [
        ("empty", "", "cannot be empty"),
        ("none", None, "cannot be empty"),
        ("latest", "latest", "reserved"),
        ("latest-upper", "LATEST", "reserved"),
        ("version-like", "v1", "reserved"),
        ("version-like-upper", "V12", "reserved"),
        ("256-chars", LONG, "255"),
        ("dot", "a.b", ALIAS_CHARS),
        ("space", "a b", ALIAS_CHARS),
        ("slash", "a/b", ALIAS_CHARS),
        ("trailing-newline", "champion\n", ALIAS_CHARS),
        ("nul", "a\x00", ALIAS_CHARS),
    ]
] + [
    bad("alias-int-store", lambda c: c.store.set_registered_model_alias(c.name, 5, 1), INVALID, "must be a string",
        offline=True),
    bad("alias-version-text", lambda c: c.client.set_registered_model_alias(c.name, "ok", "abc"), INVALID,
        "'abc'", offline=True),
    bad("alias-missing-version", lambda c: c.client.set_registered_model_alias(c.name, "ok", 99), MISSING,
        "not found"),
    bad("alias-missing-model", lambda c: c.client.set_registered_model_alias(c.missing, "ok", 1), MISSING,
        "not found"),
    bad("get-alias-missing", lambda c: c.client.get_model_version_by_alias(c.name, "nope"), INVALID,
        "alias nope not found"),  # MLflow's SQL registry's code
    bad("get-alias-bad-chars", lambda c: c.client.get_model_version_by_alias(c.name, "a.b"), INVALID, ALIAS_CHARS,
        offline=True),
    bad("delete-alias-empty", lambda c: c.client.delete_registered_model_alias(c.name, ""), INVALID,
        "cannot be empty", offline=True),
    bad("delete-alias-missing-model", lambda c: c.client.delete_registered_model_alias(c.missing, "champion"),
        MISSING, "not found"),
]


def _model_tag(key: Any, value: Any) -> Callable[[Ctx], Any]:
    return lambda c: c.client.set_registered_model_tag(c.name, key, value)


def _version_tag(key: Any, value: Any) -> Callable[[Ctx], Any]:
    return lambda c: c.client.set_model_version_tag(c.name, 1, key, value)


TAGS = [
    bad("model-tag-empty-key", _model_tag("", "v"), INVALID, 'Invalid value "" for parameter \'key\'', offline=True),
    bad("model-tag-none-key", _model_tag(None, "v"), INVALID, "Missing value for required parameter 'key'",
        offline=True),
    bad("model-tag-251-char-key", _model_tag("k" * 251, "v"), INVALID, "250", offline=True),
    bad("model-tag-nul-key", _model_tag("a\x00", "v"), INVALID, "Names may only contain", offline=True),
    bad("model-tag-newline-key", _model_tag("a\n", "v"), INVALID, "control character", offline=True),
    bad("model-tag-tab-key", _model_tag("a\tb", "v"), INVALID, "Names may only contain", offline=True),
    bad("model-tag-dotdot-key", _model_tag("../x", "v"), INVALID, "Invalid value", offline=True),
    bad("model-tag-hash-key", _model_tag("a#b", "v"), INVALID, "Invalid value", offline=True),
    bad("model-tag-alias-key", _model_tag("mlflow.alias.x", "1"), INVALID, "reserved", offline=True),
    bad("model-tag-huge-value", _model_tag("k", "v" * 100_001), INVALID, "length", offline=True),
    bad("model-tag-nul-value", _model_tag("k", "a\x00b"), INVALID, "NUL", offline=True),
    bad("model-tag-surrogate-value", _model_tag("k", "a\ud800b"), INVALID, "surrogate", offline=True),
    bad("model-tag-missing-model", lambda c: c.client.set_registered_model_tag(c.missing, "k", "v"), MISSING,
        "not found"),
    bad("delete-model-tag-empty-key", lambda c: c.client.delete_registered_model_tag(c.name, ""), INVALID,
        'Invalid value "" for parameter', offline=True),
    bad("delete-model-tag-alias-key",
        lambda c: c.client.delete_registered_model_tag(c.name, "mlflow.alias.champion"), INVALID, "reserved",
        offline=True),
    bad("delete-model-tag-missing-model", lambda c: c.client.delete_registered_model_tag(c.missing, "team"),
        MISSING, "not found"),
    bad("version-tag-empty-key", _version_tag("", "v"), INVALID, 'Invalid value "" for parameter', offline=True),
    bad("version-tag-control-key", _version_tag("a\x1b", "v"), INVALID, "Names may only contain", offline=True),
    bad("version-tag-huge-value", _version_tag("k", "v" * 100_001), INVALID, "length", offline=True),
    bad("version-tag-nul-value", _version_tag("k", "\x00"), INVALID, "NUL", offline=True),
    bad("version-tag-missing-version", lambda c: c.client.set_model_version_tag(c.name, 99, "k", "v"), MISSING,
        "not found"),
    bad("delete-version-tag-bad-version", lambda c: c.client.delete_model_version_tag(c.name, "abc", "k"),
        INVALID, VERSION_RULE, offline=True),
    bad("delete-version-tag-none-key", lambda c: c.client.delete_model_version_tag(c.name, 1, None), INVALID,
        "Missing value for required parameter 'key'", offline=True),
    bad("create-model-bad-tag", lambda c: c.client.create_registered_model(c.missing, tags={"": "x"}), INVALID,
        'Invalid value "" for parameter', offline=True),
    bad("create-model-nul-tag-value", lambda c: c.client.create_registered_model(c.missing, tags={"k": "\x00"}),
        INVALID, "NUL", offline=True),
    bad("create-version-bad-tag", lambda c: c.create(str(c.folder), tags={"bad\nkey": "v"}), INVALID,
        "Names may only contain", offline=True),
]

DESCRIPTIONS = [
    bad("model-description-huge", lambda c: c.client.update_registered_model(c.name, "d" * 100_001), INVALID,
        "at most 100000", offline=True),
    bad("model-description-int", lambda c: c.client.update_registered_model(c.name, 5), INVALID,
        "must be a string", offline=True),
    bad("model-description-nul", lambda c: c.client.update_registered_model(c.name, "a\x00b"), INVALID, "NUL",
        offline=True),
    bad("model-description-missing-model", lambda c: c.client.update_registered_model(c.missing, "x"), MISSING,
        "not found"),
    bad("version-description-huge", lambda c: c.client.update_model_version(c.name, 1, "d" * 100_001), INVALID,
        "at most 100000", offline=True),
    bad("version-description-list", lambda c: c.client.update_model_version(c.name, 1, ["x"]), INVALID,
        "must be a string", offline=True),
    bad("version-description-surrogate", lambda c: c.client.update_model_version(c.name, 1, "\udfff"), INVALID,
        "surrogate", offline=True),
    bad("create-version-description-int", lambda c: c.create(str(c.folder), description=5), INVALID,
        "must be a string", offline=True),
]


def _models(filter_string: Any, **kwargs: Any) -> Callable[[Ctx], Any]:
    return lambda c: c.client.search_registered_models(filter_string, **kwargs)


def _versions(filter_string: Any, **kwargs: Any) -> Callable[[Ctx], Any]:
    return lambda c: c.client.search_model_versions(filter_string, **kwargs)


SEARCH = [
    bad("filter-missing-value", _models("name = "), INVALID, "Invalid clause", offline=True),
    bad("filter-unterminated-quote", _models("name = 'abc"), INVALID, "Invalid clause", offline=True),
    bad("filter-unknown-attribute", _models("foo = 'x'"), INVALID, "Invalid attribute key", offline=True),
    bad("filter-bad-comparator", _models("name > 'x'"), INVALID, "comparator", offline=True),
    bad("filter-unknown-operator", _models("name ~ 'x'"), INVALID, "comparator", offline=True),
    bad("filter-or", _models("name = 'a' OR name = 'b'"), INVALID, "Invalid clause", offline=True),
    bad("filter-unquoted-number", _models("name = 5"), INVALID, "quoted string", offline=True),
    bad("filter-garbage", _models("))(("), INVALID, "Invalid clause", offline=True),
    bad("filter-empty-in", _models("name IN ()"), INVALID, "name IN ()", offline=True),
    bad("filter-like-without-value", _models("name LIKE"), INVALID, "Invalid clause", offline=True),
    bad("filter-tag-bad-comparator", _models("tags.team > 'a'"), INVALID, "comparator", offline=True),
    bad("filter-not-a-string-store", lambda c: c.store.search_registered_models(5), INVALID, "filter",
        offline=True),
    bad("version-filter-number-as-text", _versions("version_number = 'x'"), INVALID, "version_number",
        offline=True),
    bad("version-filter-stage", _versions("current_stage = 'Staging'"), INVALID, "Invalid attribute key",
        offline=True),
    bad("version-filter-unterminated-in", _versions("name IN ('a'"), INVALID, "Invalid clause", offline=True),
    bad("version-filter-run-id-comparator", _versions("run_id > 'x'"), INVALID, "comparator", offline=True),
    bad("version-filter-not-a-string", _versions(5), INVALID, "filter", offline=True),
    bad("order-by-unknown-key", _models(None, order_by=["foo"]), INVALID, "Invalid order by key 'foo'", offline=True),
    bad("order-by-bad-direction", _models(None, order_by=["name sideways"]), INVALID, "order_by", offline=True),
    bad("order-by-string", _models(None, order_by="name"), INVALID, "order_by", offline=True),
    bad("order-by-none-item", _models(None, order_by=[None]), INVALID, "order_by", offline=True),
    bad("order-by-int-item", _models(None, order_by=[5]), INVALID, "order_by", offline=True),
    bad("order-by-two-directions", _models(None, order_by=["name ASC DESC"]), INVALID, "order_by", offline=True),
    bad("version-order-by-unknown-key", _versions(None, order_by=["foo DESC"]), INVALID, "foo", offline=True),
    bad("version-order-by-stage", _versions(None, order_by=["current_stage"]), INVALID, "current_stage",
        offline=True),
    bad("max-results-negative", _models(None, max_results=-1), INVALID, "max_results", offline=True),
    bad("max-results-huge", _models(None, max_results=10**9), INVALID, "at most", offline=True),
    bad("max-results-text", _models(None, max_results="5"), INVALID, "max_results", offline=True),
    bad("max-results-float", _models(None, max_results=5.0), INVALID, "max_results", offline=True),
    bad("max-results-bool", _models(None, max_results=True), INVALID, "max_results", offline=True),
    bad("version-max-results-zero", _versions(None, max_results=0), INVALID, "max_results", offline=True),
    bad("version-max-results-huge", _versions(None, max_results=10**9), INVALID, "at most", offline=True),
    bad("page-token-garbage", _models(None, page_token="garbage"), INVALID, "Invalid page token", offline=True),
    bad("page-token-foreign-base64", _models(None, page_token="eyJhIjoxfQ=="), INVALID, "Invalid page token",
        offline=True),
    bad("page-token-int", _models(None, page_token=5), INVALID, "Invalid page token", offline=True),
    bad("page-token-unicode", _models(None, page_token="模型"), INVALID, "Invalid page token", offline=True),
    bad("version-page-token-garbage", _versions(None, page_token="!!!"), INVALID, "Invalid page token", offline=True),
    bad("page-token-tampered", _tampered_token, INVALID, "Invalid page token"),
    bad("page-token-of-another-search", _token_of_another_search, INVALID, "another search"),
]

URI_SHAPE = "Expected a URI of the form"
REGISTRY_URIS = [
    bad(f"registry-uri-{label}", _registry(uri), INVALID, fragment, offline=True)
    for label, uri, fragment in [
        ("bare", "azureml-registry://", URI_SHAPE),
        ("scheme-only", "azureml-registry:", URI_SHAPE),
        ("no-workspace", "azureml-registry://subscriptions/{sub}/resourceGroups/{rg}", URI_SHAPE),
        ("no-resource-group", "azureml-registry://subscriptions/{sub}/workspaces/local-ws", URI_SHAPE),
        ("no-subscription", "azureml-registry://resourceGroups/{rg}/workspaces/local-ws", URI_SHAPE),
        ("empty-workspace", "azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/", URI_SHAPE),
        ("empty-subscription", "azureml-registry://subscriptions//resourceGroups/{rg}/workspaces/w", URI_SHAPE),
        ("extra-tail", "{reg}/extra", "unexpected"),
        ("query", "{reg}?x=1", "no query string"),
        ("query-junk", "{reg}?%%%", "no query string"),
        ("fragment", "{reg}#frag", "no query string"),
        ("foreign-host", "azureml-registry://evil.example.com/subscriptions/{sub}/resourceGroups/{rg}"
         "/workspaces/local-ws", URI_SHAPE),
        ("long-form-tail", "azureml-registry://westus.api.azureml.ms/mlflow/v1.0/subscriptions/{sub}"
         "/resourceGroups/{rg}/workspaces/local-ws/x", "unexpected"),
        ("userinfo", "azureml-registry://user:pw@subscriptions/{sub}/resourceGroups/{rg}/workspaces/local-ws",
         URI_SHAPE),
        ("bad-port", "azureml-registry://host:99999x/subscriptions/{sub}/resourceGroups/{rg}/workspaces/local-ws",
         URI_SHAPE),
        ("artifact-uri", "{reg}/datastores/workspaceblobstore/paths/x", "unexpected"),
        ("space-in-workspace", "azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/a b",
         "Invalid workspace name"),
        ("encoded-slash-in-workspace", "azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/a%2Fb",
         "Invalid workspace name"),
        ("dotdot-workspace", "azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/..",
         "Invalid workspace name"),
        ("dotdot-resource-group", "azureml-registry://subscriptions/{sub}/resourceGroups/../workspaces/local-ws",
         "Invalid resource group"),
        ("encoded-dotdot-subscription", "azureml-registry://subscriptions/%2E%2E/resourceGroups/{rg}"
         "/workspaces/local-ws", "Invalid subscription id"),
        ("nul-in-workspace", "azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/w\x00",
         "Invalid workspace name"),
        ("newline-after-workspace", "{reg}\n", "Invalid workspace name"),
        ("unicode-workspace", "azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/模型",
         "Invalid workspace name"),
    ]
] + [
    bad("registry-uri-global", _global_registry("azureml-registry://nope"), INVALID, URI_SHAPE, offline=True),
    bad("registry-uri-unknown-workspace",
        _registry("azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/no-such-ws"), DENIED,
        "authorization"),
    bad("registry-uri-unknown-subscription",
        _registry("azureml-registry://subscriptions/no-such-sub/resourceGroups/{rg}/workspaces/local-ws"), MISSING,
        "SubscriptionNotFound"),
    bad("registry-uri-unknown-resource-group",
        _registry("azureml-registry://subscriptions/{sub}/resourceGroups/no-such-rg/workspaces/local-ws"), MISSING,
        "ResourceGroupNotFound"),
    bad("registry-uri-forbidden-workspace",
        _registry("azureml-registry://subscriptions/{sub}/resourceGroups/{rg}/workspaces/forbidden-ws"), DENIED,
        "authorization"),
]

SOURCES = [
    bad("source-missing-path", lambda c: c.create("/nonexistent/model"), MISSING, "does not exist"),
    # The model folder policy (issue #15): refused before anything is read or uploaded.
    bad("source-folder-outside-link", lambda c: c.create(_folder_with(c, "outside-link")), INVALID,
        "cannot be registered"),
    bad("source-folder-loop", lambda c: c.create(_folder_with(c, "loop")), INVALID, "cannot be registered"),
    bad("source-folder-fifo", lambda c: c.create(_folder_with(c, "fifo")), INVALID, "cannot be registered"),
    bad("source-folder-backslash-name", lambda c: c.create(_folder_with(c, "backslash")), INVALID,
        "cannot be registered"),
    bad("source-folder-newline-name", lambda c: c.create(_folder_with(c, "newline")), INVALID,
        "cannot be registered"),
    bad("source-file-uri-host", lambda c: c.create(f"file://somehost{c.folder}"), INVALID, "file://"),
    bad("source-huge-uri", lambda c: c.create("runs:/" + "r" * 1_000_000), INVALID, "chars"),
    bad("source-missing-file-uri", lambda c: c.create("file:///nonexistent/model"), MISSING, "does not exist"),
    bad("source-is-a-file", lambda c: c.create(str(c.file)), INVALID, "is a file"),
    bad("source-empty-folder", lambda c: c.create(str(c.empty_folder)), INVALID, "empty folder"),
    bad("source-name-too-long", lambda c: c.create("/" + "a" * 5000), INVALID, "cannot be read"),
    bad("source-empty", lambda c: c.create(""), INVALID, "non-empty", offline=True),
    bad("source-blank", lambda c: c.create("   "), INVALID, "non-empty", offline=True),
    bad("source-none", lambda c: c.create(None), INVALID, "non-empty", offline=True),
    bad("source-int", lambda c: c.create(5), INVALID, "non-empty", offline=True),
    bad("source-nul", lambda c: c.create("/tmp/a\x00b"), INVALID, "NUL", offline=True),
    bad("source-run-missing", lambda c: c.create(f"runs:/{NO_RUN}/model"), MISSING, NO_RUN),
    bad("source-runs-empty", lambda c: c.create("runs:/"), INVALID, "runs:/<run_id>", offline=True),
    bad("source-runs-dotdot-id", lambda c: c.create("runs:/../../etc/model"), INVALID, "runs:/<run_id>",
        offline=True),
    bad("source-runs-dotdot-path", lambda c: c.create(f"runs:/{NO_RUN}/../x"), INVALID, "runs:/<run_id>",
        offline=True),
    bad("source-models-missing-version", lambda c: c.create(f"models:/{c.name}/99"), MISSING, "not found"),
    bad("source-models-missing-model", lambda c: c.create(f"models:/{c.missing}/1"), MISSING, "not found"),
    bad("source-models-missing-alias", lambda c: c.create(f"models:/{c.name}@nope"), INVALID, "alias nope"),
    bad("source-models-empty-stage", lambda c: c.create(f"models:/{c.name}/Production"), MISSING, "No versions"),
    bad("source-models-unknown-stage", lambda c: c.create(f"models:/{c.name}/Bogus"), INVALID, STAGE_RULE,
        offline=True),
    bad("source-models-version-zero", lambda c: c.create(f"models:/{c.name}/0"), MISSING, "version=0) not found"),
    bad("source-models-empty", lambda c: c.create("models:/"), INVALID, "models:/<name>/<version>", offline=True),
    bad("source-models-name-only", lambda c: c.create(f"models:/{c.name}"), INVALID, "models:/<name>/<version>",
        offline=True),
    bad("source-models-empty-alias", lambda c: c.create(f"models:/{c.name}@"), INVALID,
        "models:/<name>/<version>", offline=True),
    bad("source-models-bad-alias", lambda c: c.create(f"models:/{c.name}@a.b"), INVALID, ALIAS_CHARS,
        offline=True),
    bad("source-models-bad-name", lambda c: c.create("models:/bad name/1"), INVALID, NAME_RULE, offline=True),
    bad("source-logged-model-missing", lambda c: c.create(f"models:/m-{NO_RUN}"), MISSING, f"m-{NO_RUN}"),
    bad("source-unknown-scheme", lambda c: c.create("foo://bar/model"), INVALID, "no MLflow artifact repository",
        offline=True),
    bad("source-datastore-missing", lambda c: c.create("azureml://datastores/nostore/paths/x"), MISSING,
        "nostore"),
    bad("source-datastore-no-files", lambda c: c.create("azureml://datastores/workspaceblobstore/paths/none/here"),
        MISSING, "No files"),
    bad("source-datastore-root", lambda c: c.create("azureml://datastores/workspaceblobstore/paths/"), INVALID,
        "whole datastore", offline=True),
    bad("source-datastore-dotdot", lambda c: c.create("azureml://datastores/workspaceblobstore/paths/../../x"),
        INVALID, "'..'", offline=True),
    bad("source-datastore-bad-name", lambda c: c.create("azureml://datastores/bad.name/paths/x"), INVALID,
        "Invalid datastore name", offline=True),
    bad("source-datastore-no-path", lambda c: c.create("azureml://datastores/workspaceblobstore"), INVALID,
        "Unrecognised", offline=True),
    bad("source-datastore-bad-workspace",
        lambda c: c.create(f"azureml://subscriptions/{c.sub}/resourcegroups/{c.rg}/workspaces/../datastores/"
                           "workspaceblobstore/paths/x"),
        INVALID, "Invalid workspace name", offline=True),
    bad("source-job-missing", lambda c: c.create("azureml://jobs/nojob/outputs/model/paths/x"), MISSING, "nojob"),
    bad("source-job-malformed", lambda c: c.create("azureml://jobs/"), INVALID, "Unrecognised", offline=True),
    bad("source-job-dotdot", lambda c: c.create("azureml://jobs/j/outputs/o/paths/../../x"), INVALID, "'..'",
        offline=True),
    bad("source-asset-without-version", lambda c: c.create(f"azureml:{c.name}"), INVALID, "Unrecognised",
        offline=True),
    bad("source-asset-missing-version", lambda c: c.create(f"azureml:{c.name}:99"), MISSING, "does not exist"),
    bad("source-asset-missing-model", lambda c: c.create(f"azureml:{c.missing}:1"), MISSING, "does not exist"),
    bad("source-asset-latest-missing", lambda c: c.create(f"azureml:{c.missing}@latest"), MISSING,
        "does not exist"),
    bad("source-asset-unknown-label", lambda c: c.create(f"azureml:{c.name}@prod"), INVALID, "Unrecognised",
        offline=True),
    bad("source-asset-dotdot-version", lambda c: c.create(f"azureml:{c.name}:.."), INVALID,
        "Invalid model version", offline=True),
    bad("source-asset-bad-name", lambda c: c.create("azureml:bad name:1"), INVALID, NAME_RULE, offline=True),
    bad("source-azureml-registry-missing", lambda c: c.create("azureml://registries/reg/models/x/versions/1"),
        MISSING, "registry 'reg'"),
    bad("source-azureml-registry-malformed", lambda c: c.create("azureml://registries/reg/models/x"),
        INVALID, "azureml://registries/<registry>/models/<name>/versions/<version>", offline=True),
    bad("source-registry-version-missing",
        lambda c: c.create("azureml-registry://registries/local-registry/models/no-such-x/versions/1"),
        MISSING, "not found"),
    bad("source-artifact-uri-malformed", lambda c: c.create("azureml-registry://nope"), INVALID, URI_SHAPE,
        offline=True),
    bad("source-artifact-uri-datastore-missing",
        lambda c: c.create(c.datastore_uri("datastores/nostore/paths/x")), MISSING, "nostore"),
    bad("source-artifact-uri-root", lambda c: c.create(c.datastore_uri("datastores/workspaceblobstore/paths/")),
        INVALID, "whole datastore", offline=True),
    bad("source-artifact-uri-dotdot",
        lambda c: c.create(c.datastore_uri("datastores/workspaceblobstore/paths/a/../b")), INVALID, "'..'",
        offline=True),
    bad("source-for-missing-model", lambda c: c.client.create_model_version(c.missing, str(c.folder)), MISSING,
        "not found"),
    bad("source-bad-run-id", lambda c: c.create(str(c.folder), run_id="../x"), INVALID, "Invalid run_id",
        offline=True),
    bad("source-bad-run-link", lambda c: c.create(str(c.folder), run_link=5), INVALID, "run_link", offline=True),
    bad("register-model-missing-path", _register("/nonexistent/model"), MISSING, "does not exist"),
    bad("register-model-missing-run", _register(f"runs:/{NO_RUN}/model"), MISSING, NO_RUN),
    bad("register-model-bad-datastore-path", _register("azureml://datastores/workspaceblobstore/paths/"),
        INVALID, "whole datastore"),
]

MODEL_URIS = [
    bad("load-missing-model", _download("models:/{c.missing}/1"), MISSING, "not found"),
    bad("load-missing-version", _download("models:/{c.name}/99"), MISSING, "version=99) not found"),
    bad("load-version-zero", _download("models:/{c.name}/0"), MISSING, "version=0) not found"),
    bad("load-unknown-stage", _download("models:/{c.name}/Bogus"), INVALID, STAGE_RULE),
    bad("load-missing-alias", _download("models:/{c.name}@nope"), INVALID, "alias nope not found"),
    bad("load-bad-alias", _download("models:/{c.name}@a.b"), INVALID, ALIAS_CHARS, offline=True),
    bad("load-bad-name", _download("models:/bad name/1"), INVALID, NAME_RULE, offline=True),
    bad("load-latest-of-missing-model", _download("models:/{c.missing}/latest"), MISSING, "not found"),
    bad("load-missing-path-in-version", _download("models:/{c.name}/1/not-there"), MISSING, "No artifacts"),
    bad("pyfunc-load-missing-alias", _load("models:/{c.name}@nope"), INVALID, "alias nope not found"),
    bad("pyfunc-load-bad-name", _load("models:/-bad/1"), INVALID, NAME_RULE, offline=True),
    bad("artifact-uri-no-datastore", _download("{c.registry}/datastores"), INVALID, "artifact URI", offline=True),
    bad("artifact-uri-no-paths", _download("{c.registry}/datastores/workspaceblobstore"), INVALID, "artifact URI",
        offline=True),
    bad("artifact-uri-dotdot", _download("{c.registry}/datastores/workspaceblobstore/paths/a/../../b"), INVALID,
        "'..'", offline=True),
    bad("artifact-uri-bad-datastore", _download("{c.registry}/datastores/a..b/paths/x/y"), INVALID,
        "Invalid datastore name", offline=True),
    bad("artifact-uri-missing-files", _download("{c.registry}/datastores/workspaceblobstore/paths/none/here"),
        MISSING, "No artifacts"),
    bad("artifact-uri-missing-datastore", _download("{c.registry}/datastores/nostore/paths/a/b"), MISSING,
        "nostore"),
    bad("artifact-uri-forbidden-workspace",
        _download("azureml-registry://subscriptions/{c.sub}/resourceGroups/{c.rg}/workspaces/forbidden-ws"
                  "/datastores/workspaceblobstore/paths/a/b"), DENIED, "authorization"),
]

MISSING_THINGS = [
    bad("update-missing-version", lambda c: c.client.update_model_version(c.name, 99, "x"), MISSING, "not found"),
    bad("delete-missing-version", lambda c: c.client.delete_model_version(c.name, 99), MISSING, "not found"),
    bad("delete-version-of-missing-model", lambda c: c.client.delete_model_version(c.missing, 1), MISSING,
        "not found"),
    bad("delete-tag-of-missing-version", lambda c: c.client.delete_model_version_tag(c.name, 99, "k"), MISSING,
        "not found"),
    bad("download-uri-missing-version", lambda c: c.client.get_model_version_download_uri(c.name, 99), MISSING,
        "not found"),
    bad("copy-to-bad-name", lambda c: c.client.copy_model_version(f"models:/{c.name}/1", "bad name"), INVALID,
        NAME_RULE),
]

UNSUPPORTED_OPERATIONS = [
    bad("rename-model", lambda c: c.client.rename_registered_model(c.name, c.missing), UNSUPPORTED,
        "cannot be renamed"),
    bad("delete-model", lambda c: c.client.delete_registered_model(c.name), UNSUPPORTED, "cannot be deleted"),
    bad("create-webhook-store", lambda c: c.store.create_webhook("w", "https://example.com/hook", []), UNSUPPORTED,
        "webhooks", offline=True),
]

CORPUS = (
    NAMES + VERSIONS + STAGES + ALIASES + TAGS + DESCRIPTIONS + SEARCH + REGISTRY_URIS + SOURCES + MODEL_URIS
    + MISSING_THINGS + UNSUPPORTED_OPERATIONS
)


# -- fixtures --------------------------------------------------------------------------------------
def snapshot(workspace: Any, name: str) -> dict[str, Any]:
    """What is registered: every model's name per workspace, and the seeded model's container and versions
    as the service holds them (``lastModifiedAt`` included, so even a PUT of identical content shows)."""
    state = workspace.state
    names = {ws: sorted(state.workspace(ws).models) for ws in workspace.workspaces}
    versions = sorted(state.workspace(WS).models[name].versions, key=int)
    return {
        "models": names,
        "container": state.get_model(WS, name),
        "versions": [state.get_version(WS, name, v) for v in versions],
    }


CREATED: set[str] = set()
"""Models this module registers on purpose after the baseline (the scratch model, names a property
generated and the service accepted): the only difference from the baseline allowed."""


def assert_unchanged(workspace: Any, ctx: Ctx, baseline: dict[str, Any]) -> None:
    """The seeded model exactly as it was; no model gone; no model added but those in ``CREATED``."""
    now = snapshot(workspace, ctx.name)
    assert (now["container"], now["versions"]) == (baseline["container"], baseline["versions"])
    for ws, before in baseline["models"].items():
        allowed = CREATED if ws == WS else set()
        assert set(before) <= set(now["models"][ws]) and set(now["models"][ws]) - set(before) <= allowed


@pytest.fixture(scope="module")
def seeded(workspace, tmp_path_factory) -> Iterator[Ctx]:
    import mlflow

    mlflow.set_registry_uri(workspace.registry_uri())
    client = mlflow.MlflowClient()
    root = tmp_path_factory.mktemp("bad-input")
    folder = root / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01weights")
    (folder / "README.md").write_text("a custom model\n")
    (root / "empty").mkdir()
    name = f"bad-input-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name, tags={"team": "risk", "note": "模型 ✓"}, description="the seeded model")
    for _ in range(2):
        client.create_model_version(name, str(folder), tags={"validated": "yes"}, description="v")
    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "2", "Staging")
    yield Ctx(
        client=client,
        store=client._get_registry_client().store,
        name=name,
        missing=f"never-registered-{uuid.uuid4().hex[:8]}",
        folder=folder,
        empty_folder=root / "empty",
        file=folder / "weights.bin",
        registry=workspace.registry_uri(),
        sub=workspace.subscription_id,
        rg=workspace.resource_group,
    )


@pytest.fixture(scope="module")
def baseline(workspace, seeded) -> dict[str, Any]:
    return snapshot(workspace, seeded.name)


def _raises(call: Callable[[], Any]) -> MlflowException:
    with pytest.raises(MlflowException) as info:
        call()
    assert type(info.value).__module__.startswith("mlflow."), type(info.value)
    return info.value


# -- the corpus ------------------------------------------------------------------------------------
def test_corpus_has_at_least_100_inputs():
    ids = [p.id for p in CORPUS]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CORPUS)
def test_bad_input(case: Bad, workspace, seeded, baseline, monkeypatch):
    mark = len(workspace.requests)
    error = _raises(lambda: case.call(seeded))
    sent = workspace.requests[mark:]
    assert error.error_code == case.code, error.message
    assert case.fragment in error.message, error.message
    assert "Traceback" not in error.message
    assert not [r for r in sent if r["method"] in WRITES], sent
    assert_unchanged(workspace, seeded, baseline)
    if case.offline:
        from mlflow import MlflowClient

        monkeypatch.setattr(MlflowClient, "_raise_if_prompt", lambda self, name: None, raising=False)
        mark = len(workspace.requests)
        _raises(lambda: case.call(seeded))
        assert workspace.requests[mark:] == [], "refused only after a request"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ImportError("No module named 'boto3'"), "FEATURE_DISABLED"),
        (FileNotFoundError(2, "No such file or directory"), MISSING),
        (PermissionError(13, "Permission denied"), DENIED),
        (ConnectionResetError(104, "Connection reset by peer"), "IO_ERROR"),
        (ValueError("not enough values to unpack"), INVALID),
        (KeyError("endpoint"), "INTERNAL_ERROR"),
        (MlflowException("uncoded"), MISSING),
    ],
    ids=["import-error", "file-not-found", "permission", "connection-reset", "value-error", "key-error", "uncoded"],
)
def test_download_failures_of_a_source_are_mlflow_errors(exc, code, seeded, workspace, baseline, monkeypatch):
    """Any MLflow artifact repository may fail with its library's exceptions (boto3 missing, a URI its parser
    cannot split, a dropped connection): the caller still gets an MlflowException naming the source."""
    import mlflow.artifacts

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", fail)
    error = _raises(lambda: seeded.create("s3://bucket/model"))
    assert error.error_code == code and "s3://bucket/model" in error.message
    assert_unchanged(workspace, seeded, baseline)


def test_other_workspace_path_of_one_segment_is_copied(workspace, client, model_name, seeded):
    """MLflow opens ``<uri>/paths`` as the repository root of ``<uri>/paths/<one segment>``: that root must parse
    (it did not, so such sources failed with INTERNAL_ERROR)."""
    datastore = workspace.datastore("local-ws-2")
    container = workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])
    prefix = f"single-{uuid.uuid4().hex[:8]}"
    for path in sorted(seeded.folder.iterdir()):
        container.upload_blob(f"{prefix}/{path.name}", path.read_bytes(), overwrite=True)
    CREATED.add(model_name)
    client.create_registered_model(model_name)
    mv = client.create_model_version(
        model_name,
        f"azureml://subscriptions/{seeded.sub}/resourcegroups/{seeded.rg}/workspaces/local-ws-2/datastores/"
        f"workspaceblobstore/paths/{prefix}",
    )
    stored = workspace.state.get_version(WS, model_name, str(mv.version))["properties"]
    assert "/paths/LocalUpload/" in stored["modelUri"]


# -- what MLflow refuses before the plugin is asked ---------------------------------------------------
MLFLOW_OWN = [
    pytest.param(lambda c: c.client.transition_model_version_stage(c.name, 1, ""), "stage must not be an empty string",
                 id="transition-empty-stage"),
    pytest.param(lambda c: c.client.rename_registered_model(c.name, " "), "name must not be an empty string",
                 id="rename-to-blank"),
    pytest.param(_download("models:/"), "Not a proper models:/ URI", id="load-empty-models-uri"),
    pytest.param(_download("models:/{c.name}@"), "Not a proper models:/ URI", id="load-empty-alias"),
    pytest.param(_download("models:/{c.name}/Production"), "No versions of model", id="load-empty-stage"),
    pytest.param(lambda c: c.client.copy_model_version(f"models:/{c.name}/99", c.missing), "not found",
                 id="copy-missing-version"),
]


@pytest.mark.parametrize(("call", "fragment"), MLFLOW_OWN)
def test_refused_by_mlflow_itself(call, fragment, seeded, workspace, baseline):
    """MLflow's client raises these before the store runs, without an error code (``INTERNAL_ERROR``): the
    plugin cannot change the code, only make sure nothing changes."""
    error = _raises(lambda: call(seeded))
    assert error.error_code in {"INTERNAL_ERROR", MISSING}, error.error_code
    assert fragment in error.message, error.message
    assert_unchanged(workspace, seeded, baseline)


# -- Hypothesis: arbitrary text --------------------------------------------------------------------
BOUNDED = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TEXT = st.text(max_size=300) | st.text(alphabet="ab-_.:/@ \n\x00", max_size=12)
FILTER_WORDS = st.sampled_from(
    ["name", "tags.team", "tags.`a b`", "run_id", "version_number", "source_path", "=", "!=", "LIKE", "ILIKE",
     "IN", "NOT", "AND", "OR", "'x'", "'%'", "(", ")", ",", "`", "'", '"', "1", "-1", "1.5", "NULL"]
)
FILTERS = TEXT | st.lists(FILTER_WORDS | st.text(max_size=4), max_size=8).map(" ".join)


@pytest.fixture(scope="module")
def scratch(seeded) -> str:
    """A model the properties may change (the seeded one must stay as it is)."""
    name = f"bad-input-scratch-{uuid.uuid4().hex[:8]}"
    CREATED.add(name)
    seeded.client.create_registered_model(name)
    seeded.client.create_model_version(name, str(seeded.folder))
    return name


def _known(error: MlflowException, codes: set[str]) -> None:
    assert type(error).__module__.startswith("mlflow.")
    assert error.error_code in codes, (error.error_code, error.message)
    assert "Traceback" not in error.message


@BOUNDED
@given(name=TEXT)
def test_any_model_name(name, workspace, seeded, scratch, baseline):
    try:
        model = seeded.client.create_registered_model(name)
    except MlflowException as error:
        _known(error, {INVALID, EXISTS})
    else:
        CREATED.add(name)
        assert model.name == name and workspace.state.get_model(WS, name)["name"] == name
    assert_unchanged(workspace, seeded, baseline)


@BOUNDED
@given(key=TEXT, value=TEXT)
def test_any_tag(key, value, workspace, seeded, scratch, baseline):
    client = seeded.client
    for set_tag, stored, read in (
        (lambda: client.set_registered_model_tag(scratch, key, value),
         lambda: workspace.state.get_model(WS, scratch), lambda: client.get_registered_model(scratch)),
        (lambda: client.set_model_version_tag(scratch, "1", key, value),
         lambda: workspace.state.get_version(WS, scratch, "1"), lambda: client.get_model_version(scratch, "1")),
    ):
        try:
            set_tag()
        except MlflowException as error:
            _known(error, {INVALID})
        else:
            assert stored()["properties"]["tags"][key] == value and read().tags[key] == value
    assert_unchanged(workspace, seeded, baseline)


@BOUNDED
@given(alias=TEXT)
def test_any_alias(alias, workspace, seeded, scratch, baseline):
    try:
        seeded.client.set_registered_model_alias(scratch, alias, "1")
    except MlflowException as error:
        _known(error, {INVALID})
    else:
        assert seeded.client.get_model_version_by_alias(scratch, alias).version == 1
    assert_unchanged(workspace, seeded, baseline)


@BOUNDED
@given(version=st.one_of(TEXT, st.integers(), st.floats(), st.booleans(), st.none()))
def test_any_version(version, workspace, seeded, baseline):
    try:
        found = seeded.client.get_model_version(seeded.name, version)
    except MlflowException as error:
        _known(error, {INVALID, MISSING})
    else:
        assert found.version in {1, 2} and type(found.version) is int
    assert_unchanged(workspace, seeded, baseline)


@BOUNDED
@given(filter_string=FILTERS)
def test_any_filter(filter_string, workspace, seeded, scratch, baseline):
    for search in (seeded.client.search_registered_models, seeded.client.search_model_versions):
        try:
            search(filter_string, max_results=10)
        except MlflowException as error:
            _known(error, {INVALID})
    assert_unchanged(workspace, seeded, baseline)


SOURCE_PREFIXES = st.sampled_from(
    ["models:/", "runs:/", "azureml:", "azureml://datastores/", "azureml://jobs/", "azureml-registry://"]
)


@BOUNDED
@given(prefix=SOURCE_PREFIXES, rest=TEXT)
@example(prefix="runs:/", rest="/[x/1/model")  # URIs Python's URL parser refuses (an unclosed IPv6 host) ...
@example(prefix="models:/", rest="/[::1/1")
@example(prefix="azureml-registry://", rest="[a]b/x")  # ... or whose host it cannot read
def test_any_uri_source(prefix, rest, workspace, seeded, scratch, baseline):
    """Only URI sources: arbitrary text as a local path could name a real folder (the repository, '/')."""
    mark = len(workspace.requests)
    try:
        seeded.client.create_model_version(scratch, prefix + rest)
    except MlflowException as error:
        _known(error, {INVALID, MISSING, UNSUPPORTED, DENIED})
        assert not [r for r in workspace.requests[mark:] if r["method"] in WRITES]
    assert_unchanged(workspace, seeded, baseline)
