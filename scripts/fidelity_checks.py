"""The recording side of ``compare_fidelity.py``: recorded exchanges, routed, and the checks of FIDELITY.md's
assumed rows. Each check names its row by a phrase of the row's text, matches exchanges by method, path pattern and
status, and says for each whether it agrees with the row (with a note)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_SCOPE = re.compile(
    r"^(?:/mferp/managementfrontend)?/subscriptions/[^/]+/resourcegroups/[^/]+"
    r"/providers/microsoft\.machinelearningservices/(?P<kind>workspaces|registries)/[^/]+(?P<rest>/.*)?$",
    re.IGNORECASE,
)
_ROUTES = [(name, re.compile(pattern + "$", re.IGNORECASE)) for name, pattern in (
    ("containers", r"/models"),
    ("container", r"/models/(?P<model>[^/]+)"),
    ("versions", r"/models/(?P<model>[^/]+)/versions"),
    ("version", r"/models/(?P<model>[^/]+)/versions/(?P<version>[^/]+)"),
    ("datastores", r"/datastores"),
    ("datastore", r"/datastores/(?P<datastore>[^/]+)"),
    ("listSecrets", r"/datastores/(?P<datastore>[^/]+)/listsecrets"),
    ("job", r"/jobs/[^/]+"),
    ("tempdataref", r"/tempdatarefs/.+"),
    ("dataref", r"/datarefs/.+"),
)]
_DISCOVERY = re.compile(r"^/registrymanagement/v1\.0/registries/[^/]+/discovery$", re.IGNORECASE)
_OPERATION = re.compile(r"^/assetstore/v1\.0/operations/[^/]+$", re.IGNORECASE)


# ------------------------------------------------------------------------------------------------ the recording
@dataclass
class Exchange:
    """One recorded exchange, with its control-plane route (None for blobs and token requests)."""

    raw: dict[str, Any]
    route: Optional[str] = None
    kind: str = ""  # "workspaces" or "registries"
    scope: str = ""  # the path up to the workspace or registry, in lower case
    rest: str = ""  # the path after it
    names: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        return self.raw.get(name)

    @property
    def body(self) -> Any:
        return self.raw.get("response_body")

    def header(self, name: str) -> Optional[str]:
        headers = self.raw.get("response_headers") or {}
        return next((v for k, v in headers.items() if k.lower() == name.lower()), None)

    @property
    def error_code(self) -> Optional[str]:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None

    @property
    def detail_codes(self) -> list[str]:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        return [d.get("code") for d in details or [] if isinstance(d, dict)]

    @property
    def props(self) -> dict[str, Any]:
        props = self.body.get("properties") if isinstance(self.body, dict) else None
        return props if isinstance(props, dict) else {}

    @property
    def resource(self) -> str:
        """The resource the path names, as a key: the workspace or registry part in lower case (ARM matches it in
        any case), model names and versions as sent."""
        return f"{self.scope}{self.rest}" if self.scope else str(self.raw.get("path"))

    @property
    def model(self) -> str:
        """The key of the model a model route names (:attr:`resource` of its container)."""
        return f"{self.scope}/models/{self.names.get('model')}"

    def describe(self) -> str:
        return f"#{self.seq} {self.method} {self.path} -> {self.status} ({self.test or 'no test'})"


def load(lines: list[str]) -> list[Exchange]:
    """Parse JSON lines into exchanges, in recorded order, each routed. Raises ``ValueError`` naming the first line
    (1-based) that is not a JSON object."""
    exchanges = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number} is not JSON ({exc.msg}, column {exc.colno})") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is not a recorded exchange (a JSON object)")
        exchange = Exchange(record)
        path = str(exchange.path or "")
        scope = _SCOPE.match(path)
        if scope:
            exchange.kind = scope["kind"].lower()
            exchange.rest = scope["rest"] or ""
            exchange.scope = path[: len(path) - len(exchange.rest)].lower()
            for name, pattern in _ROUTES:
                match = pattern.match(scope["rest"] or "")
                if match:
                    exchange.route, exchange.names = name, match.groupdict()
                    break
        elif _DISCOVERY.match(path):
            exchange.route = "discovery"
        elif _OPERATION.match(path):
            exchange.route = "operation"
        exchanges.append(exchange)
    return sorted(exchanges, key=lambda e: e.seq or 0)


def with_history(exchanges: list[Exchange], route: str, kind: str) -> Iterator[tuple[Exchange, Optional[str]]]:
    """Exchanges on ``route`` of ``kind``, each with what the recording said of its resource just before:
    ``"exists"``, ``"absent"`` or None (not seen yet). A version's writes also tell of its model."""
    known: dict[str, str] = {}
    for exchange in exchanges:
        if exchange.kind != kind or exchange.route not in ("container", "version") or exchange.status is None:
            continue
        if exchange.route == route:
            yield exchange, known.get(exchange.resource)
        status, method = exchange.status, exchange.method
        if method == "DELETE" and status in (200, 202, 204):
            known[exchange.resource] = "absent"
        elif 200 <= status < 300 and method in ("GET", "PUT"):
            known[exchange.resource] = "exists"
            if exchange.route == "version":
                known[exchange.model] = "exists"
        elif status == 404 and method == "GET":
            known[exchange.resource] = "absent"


# ------------------------------------------------------------------------------------------------ checks
Verdict = tuple[bool, Exchange, str]  # (agrees with the row, the exchange, a note)
CHECKS: list[tuple[str, Callable[[list[Exchange]], Iterator[Verdict]]]] = []


def check(phrase: str) -> Callable:
    """Register a check of the row whose behaviour text contains ``phrase``."""
    def register(fn: Callable[[list[Exchange]], Iterator[Verdict]]) -> Callable:
        CHECKS.append((phrase, fn))
        return fn
    return register


def _arm(exchanges: list[Exchange]) -> Iterator[Exchange]:
    return (e for e in exchanges if e.route is not None and e.status is not None)


@check("Every answer also carries `x-ms-correlation-request-id`")
def _correlation(exchanges):
    for e in _arm(exchanges):
        value, request_id = e.header("x-ms-correlation-request-id"), e.header("x-ms-request-id")
        yield value is not None and value == request_id, e, f"correlation id {value!r}, request id {request_id!r}"


@check("Every answer carries `x-ms-request-id`")
def _request_id(exchanges):
    for e in _arm(exchanges):
        value = e.header("x-ms-request-id")
        yield bool(value and UUID.match(value)), e, f"x-ms-request-id {value!r}"


@check("A bearer token is required")
def _unauthenticated(exchanges):
    for e in _arm(exchanges):
        if e.status == 401:
            challenge = e.header("WWW-Authenticate") or ""
            codes = ("AuthenticationFailed", "InvalidAuthenticationToken")
            note = f"code {e.error_code!r}, WWW-Authenticate {challenge[:40]!r}"
            yield e.error_code in codes and challenge.startswith("Bearer"), e, note


@check("A workspace the token is not granted for gives 403")
def _forbidden(exchanges):
    for e in _arm(exchanges):
        if e.status == 403:
            yield e.error_code == "AuthorizationFailed", e, f"code {e.error_code!r}"


@check("DELETE version answers 200 when it existed and 204")
def _delete_status(exchanges):
    for e, before in with_history(exchanges, "version", "workspaces"):
        if e.method == "DELETE" and before is not None:
            yield e.status == (200 if before == "exists" else 204), e, f"the version {before} before"


@check("GET of an unknown version of a known model gives 404")
def _version_not_found(exchanges):
    known_models = set()
    for e, _ in with_history(exchanges, "version", "workspaces"):
        model = e.model
        if e.method == "GET" and e.status == 404 and model in known_models:
            yield "ModelVersionNotFound" in e.detail_codes, e, f"codes {e.error_code!r} {e.detail_codes}"
        if e.status is not None and 200 <= e.status < 300:
            known_models.add(model)


def _kept_on_update(exchanges: list[Exchange], key: str, null_becomes: Optional[str]) -> Iterator[Verdict]:
    """Version PUTs answering 200 whose body omits ``key`` (or sends null): the answer keeps the stored value."""
    stored: dict[str, Any] = {}
    for e in exchanges:
        if e.kind != "workspaces" or e.route != "version" or e.status is None:
            continue
        sent = (e.request_body or {}).get("properties") if isinstance(e.request_body, dict) else None
        if e.method == "PUT" and e.status == 200 and isinstance(sent, dict) and e.resource in stored:
            if key not in sent:
                note = f"{key} {e.props.get(key)!r}, was {stored[e.resource]!r}"
                yield e.props.get(key) == stored[e.resource], e, note
            elif sent[key] is None and null_becomes is not None:
                yield e.props.get(key) == null_becomes, e, f"null {key} answered {e.props.get(key)!r}"
        if e.method in ("GET", "PUT") and 200 <= e.status < 300 and key in e.props:
            stored[e.resource] = e.props[key]


@check("On update, an omitted `stage` keeps the stored stage")
def _stage_kept(exchanges):
    return _kept_on_update(exchanges, "stage", "Development")


@check("An update without `modelUri` keeps the stored one")
def _model_uri_kept(exchanges):
    return _kept_on_update(exchanges, "modelUri", None)


@check("`jobName` is stored as given")
def _job_name(exchanges):
    for e in _arm(exchanges):
        sent = (e.request_body or {}).get("properties") if isinstance(e.request_body, dict) else None
        named = isinstance(sent, dict) and isinstance(sent.get("jobName"), str)
        if e.route == "version" and e.method == "PUT" and e.status in (200, 201) and named:
            yield e.props.get("jobName") == sent["jobName"], e, f"sent {sent['jobName']!r}"


def _born_models(exchanges: list[Exchange]) -> Iterator[tuple[Exchange, list[str], set[str]]]:
    """Container GETs (workspaces) of models whose first recorded request answered 404, each with the versions
    created (201) and deleted (200) so far."""
    first: dict[str, int] = {}
    created: dict[str, list[str]] = defaultdict(list)
    deleted: dict[str, set[str]] = defaultdict(set)
    for e in _arm(exchanges):
        if e.kind != "workspaces" or e.route not in ("container", "versions", "version"):
            continue
        model = e.model
        first.setdefault(model, e.status)
        if e.route == "version" and e.method == "PUT" and e.status == 201:
            created[model].append(e.names["version"])
        if e.route == "version" and e.method == "DELETE" and e.status == 200:
            deleted[model].add(e.names["version"])
        if e.route == "container" and e.method == "GET" and e.status == 200 and first[model] == 404:
            yield e, created[model], deleted[model]


@check("`latestVersion` = the most recently created version that still exists")
def _latest_version(exchanges):
    for e, created, deleted in _born_models(exchanges):
        alive = [v for v in created if v not in deleted]
        expected = alive[-1] if alive else None
        yield e.props.get("latestVersion") == expected, e, f"latestVersion {e.props.get('latestVersion')!r}"


@check("`nextVersion` = 1 + the highest integer version ever created")
def _next_version(exchanges):
    for e, created, _ in _born_models(exchanges):
        expected = 1 + max([int(v) for v in created if v.isdigit()] or [0])
        yield str(e.props.get("nextVersion")) == str(expected), e, f"nextVersion {e.props.get('nextVersion')!r}"


def _newest_first(e: Exchange) -> bool:
    times = [str(((item or {}).get("systemData") or {}).get("createdAt") or "") for item in e.body.get("value") or []]
    return times == sorted(times, reverse=True)


@check("Container list order: newest container first")
def _container_order(exchanges):
    for e in _arm(exchanges):
        if e.kind == "workspaces" and e.route == "containers" and e.status == 200 and isinstance(e.body, dict):
            yield _newest_first(e), e, f"{len(e.body.get('value') or [])} containers"


@check("Lists: `listViewType` (values as for workspaces")
def _registry_list_order(exchanges):
    for e in _arm(exchanges):
        if e.kind == "registries" and e.route in ("containers", "versions") and e.status == 200 and e.body:
            yield _newest_first(e), e, f"{len(e.body.get('value') or [])} items"


@check("PUT: 201 + `Location` on create, 200 on update")
def _container_put(exchanges):
    for e, before in with_history(exchanges, "container", "workspaces"):
        if e.method == "PUT" and before == "absent":
            yield e.status == 201 and bool(e.header("Location")), e, f"Location {e.header('Location')!r}"
        elif e.method == "PUT" and before == "exists":
            yield e.status == 200, e, "the container existed"


@check("Page size 20 (settable")
def _page_size(exchanges):
    for e in _arm(exchanges):
        if e.kind == "workspaces" and e.route == "versions" and e.status == 200 and "$top" not in (e.query or {}):
            count, more = len((e.body or {}).get("value") or []), bool((e.body or {}).get("nextLink"))
            if count > 20 or (count == 20 and more):
                yield count == 20, e, f"{count} versions, nextLink {more}"


@check("`listSecrets` on an identity-based datastore gives 400")
def _identity_list_secrets(exchanges):
    kinds: dict[str, str] = {}
    for e in _arm(exchanges):
        if e.route == "datastore" and e.status == 200:
            kinds[e.names["datastore"]] = str((e.props.get("credentials") or {}).get("credentialsType"))
        elif e.route == "listSecrets" and kinds.get(e.names["datastore"]) == "None":
            yield e.status == 400, e, "identity-based datastore"


@check("Unknown datastore gives 404")
def _datastore_not_found(exchanges):
    for e in _arm(exchanges):
        if e.route == "datastore" and e.method == "GET" and e.status == 404:
            yield "DatastoreNotFound" in e.detail_codes, e, f"codes {e.error_code!r} {e.detail_codes}"


@check("Discovery of an unknown registry: 404 `NotFound`")
def _discovery_not_found(exchanges):
    for e in _arm(exchanges):
        if e.route == "discovery" and e.status == 404:
            yield e.error_code == "NotFound", e, f"code {e.error_code!r}"


@check("Container PUT and version/container DELETE are operations the same way")
def _registry_lro(exchanges):
    for route in ("container", "version"):
        for e, before in with_history(exchanges, route, "registries"):
            if (e.method == "PUT" and route == "container") or e.method == "DELETE":
                if e.status == 202:
                    yield bool(e.header("Location")), e, f"Location {e.header('Location')!r}"
                elif e.method == "DELETE" and e.status == 204 and before is not None:
                    yield before == "absent", e, f"the resource {before} before"
                elif e.status in (200, 201):
                    yield False, e, "answered at once, not as an operation"


@check("The operation completes at the first poll")
def _first_poll(exchanges):
    seen = set()
    for e in _arm(exchanges):
        if e.route == "operation" and e.method == "GET" and e.resource not in seen:
            seen.add(e.resource)
            yield e.status == 200, e, "first poll"


@check("Container resource: `id` = `azureml://registries/")
def _registry_container_shape(exchanges):
    for e in _arm(exchanges):
        if e.kind == "registries" and e.route == "container" and e.method == "GET" and e.status == 200:
            missing = [k for k in ("latestVersion", "nextVersion") if k not in e.props]
            yield not missing, e, f"missing {missing}" if missing else "latestVersion and nextVersion present"


@check("`createdBy`/`lastModifiedBy` = `Local User`")
def _created_by(exchanges):
    for e in _arm(exchanges):
        data = e.body.get("systemData") if isinstance(e.body, dict) and e.route in ("container", "version") else None
        if isinstance(data, dict) and "createdBy" in data:
            yield data.get("createdBy") == "Local User", e, f"createdByType {data.get('createdByType')!r}"
