"""What a live run created, and its removal at the end of the session.

Azure ML cannot delete a model container, so cleanup deletes every version of each model the run owns, archives
its container (hidden from Studio's and the SDK's default lists, and from MLflow's searches), and deletes the
model's write-lease blob (workspaces). A model is the run's when its name starts with the run's prefix
(:func:`tests.live.mode.name_prefix`; models made by processes the tests start are found this way, by listing the
containers), or when this process saw it absent (a 404) before writing to it (names tests make up themselves).
Nothing else is touched. Left behind: the archived containers, the uploaded files (``LocalUpload/<content hash>/``
on the workspace's blob store: content-addressed, so possibly shared with other models), and any model a process
started by a test made under a name of its own.

After a run that could not clean up, sweep the live target (``MLFLOW_AZUREML_LIVE_REGISTRY_URI``) by hand; it
takes either one run or an age, never "every run's models", since a colleague's live run may be going on in the same
workspace:

- ``python -m tests.live.cleanup RUN``: the models of one run. RUN is the run id or the whole prefix
  (``mlflowazmltest-<run id>-``), as the session's ``live cleanup:`` line printed it.
- ``python -m tests.live.cleanup --older-than HOURS``: the models of every run that started more than HOURS ago. A
  run's start is in its id (UTC month, day, hour and minute: :data:`tests.live.mode.RUN_ID`); a model name under
  ``mlflowazmltest-`` without a readable run id is left alone, and so is a model whose container Azure ML reports as
  modified (``systemData.lastModifiedAt``) less than HOURS ago. Give HOURS well above the longest live run (a run
  still going after HOURS would lose its models).

Exit status 0 when everything found was cleaned, 1 when something failed (listed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional
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

    prefix: str = ""

    def lines(self) -> list[str]:
        out = [f"live cleanup: {len(self.models)} models of this run (prefix {self.prefix}): {self.versions_deleted} "
               f"versions deleted, {len(self.archived)} containers archived (Azure ML cannot delete them)"]
        if self.written_not_owned:
            out.append(f"  written to but not this run's (left as they are): {', '.join(self.written_not_owned)}")
        out += [f"  FAILED: {failure}" for failure in self.failures]
        return out


def sweep(target: Any, prefix: str, born: set[str] = frozenset(), written: set[str] = frozenset(),
          select: Optional[Callable[[dict[str, Any]], bool]] = None) -> Summary:
    """Delete every version of the models named ``prefix...`` (of those, only the containers ``select`` accepts,
    when given) or in ``born``, archive their containers, delete their lease blobs. Failures are collected, not
    raised (the rest is still cleaned)."""
    from mlflow_azureml_registry import session

    summary = Summary(prefix=prefix)
    models = session.gateway(target).models
    try:
        names = {c["name"] for c in models.list_containers(list_view_type="All")
                 if c["name"].startswith(prefix) and (select is None or select(c))}
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


_RUN_NAME = re.compile(r"^(?P<prefix>mlflowazmltest-(?P<run>(?P<stamp>\d{8})[0-9a-f]{4})-)")


def run_started(name: str, now: float) -> Optional[float]:
    """When the run that named the model ``name`` started (Unix time), from its run id (UTC month, day, hour,
    minute; the year is the latest that puts it in the past); None when the name carries no run id."""
    found = _RUN_NAME.match(name)
    if found is None:
        return None
    stamp, year = found["stamp"], datetime.fromtimestamp(now, timezone.utc).year
    for candidate in (year, year - 1):
        try:
            started = datetime.strptime(f"{candidate}{stamp}", "%Y%m%d%H%M").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:  # 29 February of another year, or not a date at all
            continue
        if started <= now + 300:  # a clock a few minutes ahead still counts as the past
            return started
    return None


def _modified(container: dict[str, Any]) -> Optional[float]:
    text = (container.get("systemData") or {}).get("lastModifiedAt")
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp() if text else None
    except ValueError:
        return None


def older_than(hours: float, now: float) -> Callable[[dict[str, Any]], bool]:
    """A ``sweep`` filter: models of runs that started more than ``hours`` ago, and whose container was not
    modified since (when Azure ML says)."""
    limit = now - hours * 3600

    def select(container: dict[str, Any]) -> bool:
        started, modified = run_started(str(container.get("name")), now), _modified(container)
        return started is not None and started < limit and (modified is None or modified < limit)

    return select


def _parser() -> argparse.ArgumentParser:
    from .mode import LIVE_URI_VARIABLE, NAME_PREFIX

    parser = argparse.ArgumentParser(
        prog="python -m tests.live.cleanup",
        description=f"Empty and archive the models a live test run left in the live target ({LIVE_URI_VARIABLE}): "
        "one run's, or every run's that started more than HOURS ago. Never every run's at once: a colleague's run "
        "may be going on.",
        epilog="exit status: 0 cleaned, 1 something failed (listed), 2 bad arguments",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("run", nargs="?", metavar="RUN",
                       help=f"a run id, or its prefix {NAME_PREFIX}<run id>- (the session's 'live cleanup:' line "
                            "prints it)")
    which.add_argument("--older-than", type=float, metavar="HOURS",
                       help="every run that started more than HOURS ago (its models not modified since)")
    return parser


def main(argv: list[str]) -> int:
    from mlflow_azureml_registry.uri import InvalidUri, parse_registry_uri

    from .mode import LIVE_URI_VARIABLE, NAME_PREFIX, live_uri

    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or bad arguments: argparse printed the usage
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    select = None
    if args.older_than is not None:
        if not args.older_than > 0:
            parser.print_usage(sys.stderr)
            print(f"--older-than must be a number of hours > 0, got {args.older_than:g}", file=sys.stderr)
            return 2
        prefix, select = NAME_PREFIX, older_than(args.older_than, time.time())
    else:
        run = args.run if args.run.startswith(NAME_PREFIX) else f"{NAME_PREFIX}{args.run}"
        found = _RUN_NAME.match(run if run.endswith("-") else f"{run}-")
        if found is None or found["prefix"].rstrip("-") != run.rstrip("-"):
            parser.print_usage(sys.stderr)
            print(f"RUN must be a run id (8 digits, 4 hex digits) or {NAME_PREFIX}<run id>-, got {args.run!r}",
                  file=sys.stderr)
            return 2
        prefix = found["prefix"]
    uri = live_uri()
    if uri is None:
        parser.print_usage(sys.stderr)
        print(f"Set {LIVE_URI_VARIABLE} to the workspace or registry to sweep.", file=sys.stderr)
        return 2
    try:
        target = parse_registry_uri(uri)
    except InvalidUri as exc:
        print(f"{LIVE_URI_VARIABLE}: {exc}", file=sys.stderr)
        return 2
    summary = sweep(target, prefix, select=select)
    print("\n".join(summary.lines()))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
