"""``mlflow-azureml-registry doctor [REGISTRY_URI]``: check a set-up, one line per check, and say what to fix.

The checks, in order (``doctor_checks.py`` and ``doctor_storage.py`` ask Azure, ``doctor_env.py`` looks at this
machine):

1. the registry URI parses (the argument, else ``MLFLOW_REGISTRY_URI``);
2. the credential the plugin finds, and whom its token is for (claims decoded, never verified, never printed);
3. the workspace, or the registry (through registry discovery), answers;
4. the identity may read model assets (a listing), and write them (its Azure RBAC permissions: nothing is written);
5. the upload datastore (``workspaceblobstore``) and its credential (``listSecrets``, or the identity's token);
6. blobs: a probe blob written, read back and removed (a registry: its files listed through a data reference);
7. the local clock against the service's ``Date`` header;
8. the installed MLflow is in the supported range;
9. which installed plugins claim the plugin's scheme (and whether Microsoft's ``azureml-mlflow`` is beside it).

A check whose prerequisite failed is shown as skipped. Each line is ``ok``, ``warn``, ``FAIL`` or ``skip``, the
check, what was found, and for ``warn`` and ``FAIL`` what to do. Exit code 2 for bad arguments, which includes no
URI at all and a URI that does not parse (every check still runs and prints its line); else 1 when any check
failed, else 0. When the reader goes away early (``doctor | head -2``), the run stops quietly: exit code 1 if a check
printed so far had failed (2 for the URI), else 0, so a pipe cut short never looks like a failed check. Secrets never
reach the output: SAS signatures and account keys are masked, and the token and the datastore secrets the run saw
are replaced wherever they would appear.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"


@dataclass
class Result:
    """What one check found; ``fix`` says what to do (for ``warn`` and ``FAIL``)."""

    status: str
    found: str
    fix: str = ""
    blocks: bool = False
    """For ``skip``: True when it was skipped because a prerequisite failed (its own dependents skip too); False
    when it does not apply (a registry has no datastore), which does not stop the checks after it."""
    cause: tuple[str, ...] = ()
    """For a blocked ``skip``: the checks that failed, however far up the chain of prerequisites."""


@dataclass(frozen=True)
class Check:
    title: str
    run: Callable[[Any], Result]
    needs: tuple[str, ...] = ()
    """Titles of the checks it depends on."""
    applies: Optional[Callable[[Any], Optional[str]]] = None
    """Why the check does not apply to this target (None: it does); asked before its prerequisites, so that a check
    that does not apply says so even when they failed."""


@dataclass
class Context:
    """What the checks share: the URI as given, and what earlier checks found (target, credential, gateway, ...)."""

    uri_argument: Optional[str]
    values: dict[str, Any] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    """Values that must never be printed (the token, a datastore SAS or key)."""
    closers: list[Callable[[], None]] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    """Each check's result, by title, as the run goes."""

    def close(self) -> None:
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):  # closing a client must not hide the report
                close()


def checks() -> list[Check]:
    """The checks, in order."""
    from . import doctor_checks as azure
    from . import doctor_env as local
    from . import doctor_storage as storage

    return [
        Check("URI", azure.check_uri),
        Check("credential", azure.check_credential),
        Check("reachable", azure.check_reachable, needs=("URI", "credential")),
        Check("permissions", azure.check_permissions, needs=("reachable",)),
        Check("datastore", azure.check_datastore, needs=("reachable",), applies=azure.datastore_applies),
        Check("storage", storage.check_storage, needs=("reachable", "datastore")),
        Check("clock", local.check_clock),
        Check("MLflow", local.check_mlflow),
        Check("plugins", local.check_plugins),
    ]


def run(context: Context, out: TextIO) -> int:
    """Run every check, print one line each and a summary to ``out``; return the exit code: 2 when the URI check
    failed (no URI, or one that does not parse: bad arguments), else 1 if any check failed, else 0."""
    from .credentials import redact

    results = context.results
    all_checks = checks()
    width = max(len(c.title) for c in all_checks)
    for number, check in enumerate(all_checks, 1):
        cause = tuple(dict.fromkeys(c for n in check.needs for c in _failed_cause(n, results[n])))
        reason = _not_applicable(check, context) if check.applies is not None else None
        if reason is not None:
            result = Result(SKIP, f"does not apply: {reason}")
        elif cause:
            result = Result(SKIP, f"not checked: {' and '.join(cause)} did not pass", blocks=True, cause=cause)
        else:
            result = _run_one(check, context)
        results[check.title] = result
        line = f"{number:>2} {result.status:<4}  {check.title:<{width}}  {result.found}"
        if result.fix and result.status in (WARN, FAIL):
            line = f"{line.rstrip().rstrip('.')}. To fix: {result.fix}"
        print(_clean(redact(line), context.secrets), file=out, flush=True)
    counts = {s: sum(1 for r in results.values() if r.status == s) for s in (OK, WARN, FAIL, SKIP)}
    print(
        f"{len(results)} checks: {counts[OK]} ok, {counts[WARN]} warn, {counts[FAIL]} failed, {counts[SKIP]} skipped",
        file=out,
    )
    if results["URI"].status == FAIL:
        return 2
    return 1 if counts[FAIL] else 0


def _failed_cause(title: str, result: Result) -> tuple[str, ...]:
    """The failed checks behind a prerequisite that did not pass (itself when it failed), else ()."""
    if result.status == FAIL:
        return (title,)
    return (result.cause or (title,)) if result.blocks else ()


def _not_applicable(check: Check, context: Context) -> Optional[str]:
    try:
        return check.applies(context) if check.applies is not None else None
    except Exception:  # noqa: BLE001 - unknown (e.g. no target yet): the check's prerequisites decide
        return None


def _run_one(check: Check, context: Context) -> Result:
    try:
        return check.run(context)
    except Exception as exc:  # noqa: BLE001 - reported as the check's failure, never as a traceback
        if isinstance(exc, ValueError) and "MLFLOW_AZUREML_" in str(exc):
            # The plugin's settings refuse a bad environment variable (settings.py), naming it.
            return Result(FAIL, str(exc), "correct that environment variable, or unset it for its default")
        return Result(
            FAIL,
            f"the check itself failed: {type(exc).__name__}: {exc}",
            "report this line (it holds no secret) to the plugin's maintainers",
        )


def _clean(line: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 8:
            line = line.replace(secret, "<redacted>")
    return line.replace("\n", " ").replace("\r", " ")


def main(argv: Optional[list[str]] = None) -> int:
    """``mlflow-azureml-registry doctor [REGISTRY_URI]``; returns the exit code (0: nothing failed)."""
    parser = argparse.ArgumentParser(
        prog="mlflow-azureml-registry doctor",
        description="Check a registry URI's set-up: the URI, the credential, access to the workspace or registry, "
        "its datastore and storage, the clock, the MLflow version and the installed plugins. Nothing is created: "
        "the storage check writes one probe blob and removes it.",
    )
    parser.add_argument(
        "registry_uri",
        nargs="?",
        metavar="REGISTRY_URI",
        help="azureml-registry://... (default: the environment variable MLFLOW_REGISTRY_URI)",
    )
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # -h, or bad arguments: argparse has printed why
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    context = Context(args.registry_uri)
    identity_log = logging.getLogger("azure.identity")
    propagate = identity_log.propagate
    # azure-identity logs the failures the credential check reports, over several lines: not twice (a NullHandler,
    # or Python's last-resort handler prints them).
    quiet = logging.NullHandler()
    identity_log.addHandler(quiet)
    identity_log.propagate = False
    try:
        print(f"mlflow-azureml-registry doctor {_shown_uri(args.registry_uri)}", flush=True)
        return run(context, sys.stdout)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, failing only for what failed
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit; it must not fail again
        if context.results.get("URI", Result(OK, "")).status == FAIL:
            return 2
        return 1 if any(r.status == FAIL for r in context.results.values()) else 0
    finally:
        context.close()
        identity_log.propagate = propagate
        identity_log.removeHandler(quiet)


def _shown_uri(given: Optional[str]) -> str:
    from .uri import quote_input

    if given is not None:
        return quote_input(given)
    env = os.environ.get("MLFLOW_REGISTRY_URI")
    return f"{quote_input(env)} (from MLFLOW_REGISTRY_URI)" if env else "(no URI given, MLFLOW_REGISTRY_URI unset)"
