"""What a live run created, and its removal at the end of the session.

Azure ML cannot delete a model container, so cleanup deletes every version of each model the run owns, archives
its container (hidden from Studio's and the SDK's default lists, and from MLflow's searches), and deletes the
model's write-lease blob (workspaces). A model is the run's when its name starts with the run's prefix
(:func:`tests.live.mode.name_prefix`; models made by processes the tests start are found this way, by listing the
containers), or when this process saw it absent (a 404) before writing to it (names tests make up themselves).
Nothing else is touched. Left behind: the archived containers, the uploaded files (``LocalUpload/<content hash>/``
on the workspace's blob store: content-addressed, so possibly shared with other models), and any model a process
started by a test made under a name of its own.

``python -m tests.live.cleanup [PREFIX]`` sweeps the live target (``MLFLOW_AZUREML_LIVE_REGISTRY_URI``) for models
whose names start with PREFIX (default ``mlflowazmltest-``: every run's), after a run that could not clean up.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from .traffic import Exchange

_MODEL_PATH = re.compile(r"/(?:workspaces|registries)/(?P<target>[^/]+)/models/(?P<model>[^/]+)", re.IGNORECASE)


class Tracker:
    """A traffic listener (:func:`tests.live.traffic.add_listener`): the models of ``target`` (a
    ``WorkspaceRef`` or ``RegistryRef``) this process wrote to, and the status of the first request it saw
    for each."""

    def __init__(self, target: Any) -> None:
        self._target = target.name.lower()
        self._lock = threading.Lock()
        self.first_status: dict[str, int] = {}
        self.written: set[str] = set()

    def __call__(self, exchange: Exchange) -> None:
        status = exchange.status
        found = _MODEL_PATH.search(unquote(urlsplit(exchange.url).path))
        if status is None or found is None or found["target"].lower() != self._target:
            return
        name = found["model"]
        with self._lock:
            self.first_status.setdefault(name, status)
            if exchange.method.upper() in ("PUT", "POST", "DELETE") and 200 <= status < 300:
                self.written.add(name)

    def born(self) -> set[str]:
        """Models written to that did not exist when this process first asked for them."""
        with self._lock:
            return {name for name in self.written if self.first_status.get(name) == 404}


@dataclass
class Summary:
    models: list[str] = field(default_factory=list)
    versions_deleted: int = 0
    archived: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    written_not_owned: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"live cleanup: {len(self.models)} models of this run: {self.versions_deleted} versions deleted, "
               f"{len(self.archived)} containers archived (Azure ML cannot delete them)"]
        if self.written_not_owned:
            out.append(f"  written to but not this run's (left as they are): {', '.join(self.written_not_owned)}")
        out += [f"  FAILED: {failure}" for failure in self.failures]
        return out


def sweep(target: Any, prefix: str, born: set[str] = frozenset(), written: set[str] = frozenset()) -> Summary:
    """Delete every version of the models named ``prefix...`` or in ``born``, archive their containers, delete
    their lease blobs. Failures are collected, not raised (the rest is still cleaned)."""
    from mlflow_azureml_registry import session

    summary = Summary()
    models = session.gateway(target).models
    try:
        names = {c["name"] for c in models.list_containers(list_view_type="All") if c["name"].startswith(prefix)}
    except Exception as exc:
        names = set()
        summary.failures.append(f"listing the models: {exc}")
    names |= set(born)
    summary.models = sorted(names)
    summary.written_not_owned = sorted(set(written) - names)
    for name in summary.models:
        try:
            summary.versions_deleted += _empty(models, name)
            if _archive(models, name):
                summary.archived.append(name)
            _drop_lease(target, name)
        except Exception as exc:
            summary.failures.append(f"{name}: {exc}"[:500])
    return summary


def _empty(models: Any, name: str) -> int:
    versions = [str(v["id"]).rsplit("/", 1)[-1] for v in models.list_versions(name, list_view_type="All")]
    for version in versions:
        models.delete_version(name, version)
    return len(versions)


def _archive(models: Any, name: str) -> bool:
    """GET, then PUT with ``isArchived`` (the Azure ML SDK's archive flow, FIDELITY.md). False if archived."""
    properties = models.get_container(name).get("properties") or {}
    if properties.get("isArchived"):
        return False
    body = {"properties": {"description": properties.get("description"), "tags": properties.get("tags") or {},
                           "properties": properties.get("properties") or {}, "isArchived": True}}
    models.put_container(name, body, read_back=False)
    return True


def _drop_lease(target: Any, name: str) -> None:
    if target.kind != "workspace":
        return  # a registry's write lock is a file on this machine
    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.azure.leases import LEASE_DATASTORE, LEASE_PREFIX

    with contextlib.suppress(Exception):  # no lease blob (a model never written through the plugin), no permission
        session.gateway(target).container_client(LEASE_DATASTORE).delete_blob(f"{LEASE_PREFIX}{name}")


def main(argv: list[str]) -> int:
    from mlflow_azureml_registry.uri import parse_registry_uri

    from .mode import LIVE_URI_VARIABLE, NAME_PREFIX, live_uri

    uri = live_uri()
    if uri is None:
        print(f"Set {LIVE_URI_VARIABLE} to the workspace or registry to sweep.", file=sys.stderr)
        return 2
    prefix = argv[0] if argv else NAME_PREFIX
    if not prefix.startswith(NAME_PREFIX):
        print(f"Refusing a prefix that does not start with {NAME_PREFIX!r}: only test models are swept.",
              file=sys.stderr)
        return 2
    summary = sweep(parse_registry_uri(uri), prefix)
    print("\n".join(summary.lines()))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
