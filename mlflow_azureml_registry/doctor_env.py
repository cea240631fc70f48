"""The doctor's checks of this machine (7-9 of :mod:`.doctor`): the clock against Azure's, the MLflow version, and
the installed plugins that claim the plugin's URI scheme."""

from __future__ import annotations

import os
import re
import time
from typing import Optional

from . import settings
from .doctor import FAIL, OK, SKIP, WARN, Context, Result

WARN_SKEW_S = 300.0
"""Five minutes. azure-core renews a bearer token 300 s before it expires (``DEFAULT_REFRESH_WINDOW_SECONDS``), and
Entra ID tokens are validated with a 5-minute clock-skew allowance (Microsoft.IdentityModel's
``TokenValidationParameters.DefaultClockSkew``): a clock further off makes the client send tokens the service takes
as expired or not yet valid, and can get time-limited client assertions (certificates, workload identity) refused."""
FAIL_SKEW_S = 900.0
"""Fifteen minutes: Azure Storage refuses a Shared Key request whose ``x-ms-date`` is more than 15 minutes from its
own clock ("Authorize with Shared Key": "the storage service ensures that a request is no older than 15 minutes"),
so every blob request with a datastore's account key fails; SAS and tokens are already at risk (above)."""

SCHEME = "azureml-registry"
DISTRIBUTION = "mlflow-azureml-registry"
GROUPS = ("mlflow.model_registry_store", "mlflow.artifact_repository")
SUPPORTED_MLFLOW = ">=2.16,<4"
"""The ``mlflow-skinny`` requirement in pyproject.toml; read from the installed metadata when there is one."""


def local_time() -> float:
    """This machine's clock (Unix time); the clock check reads it here."""
    return time.time()


# ------------------------------------------------------------------------------------------------ 7. clock
def check_clock(ctx: Context) -> Result:
    """The local clock against Resource Manager's ``Date`` header (read without a token, so it works whatever the
    credential does); ``warn`` beyond :data:`WARN_SKEW_S`, ``FAIL`` beyond :data:`FAIL_SKEW_S`."""
    from .azure.diagnostics import service_clock
    from .azure.errors import AzureMLError
    from .doctor_advice import NETWORK_FIX
    from .doctor_checks import timed_out

    endpoint = settings.resource_manager_url()
    if timed_out(ctx, endpoint):  # no second wait for the same dead endpoint
        return Result(SKIP, f"not read: {endpoint} did not answer the reachable check (timed out)")
    try:
        reading = service_clock(endpoint, settings.http_settings(), clock=local_time)
    except AzureMLError as exc:
        reachable = ctx.results.get("reachable")
        fix = ("see the reachable check" if reachable is not None and reachable.status == FAIL
               else NETWORK_FIX)
        return Result(WARN, f"not read: {exc.message}", f"{fix}; the clock could not be compared")
    skew = reading.skew
    side = "ahead of" if skew > 0 else "behind"
    found = (f"this machine's clock is {abs(skew):.0f} s {side} {endpoint}'s (Date header; to within "
             f"{0.5 + reading.round_trip / 2:.1f} s)")
    fix = "synchronise the clock with NTP (Linux: `timedatectl set-ntp true`; Windows: `w32tm /resync`)"
    if abs(skew) > FAIL_SKEW_S:
        return Result(FAIL, f"{found}: over {FAIL_SKEW_S / 60:.0f} min, Azure Storage refuses requests signed with "
                            "a key", fix)
    if abs(skew) > WARN_SKEW_S:
        return Result(WARN, f"{found}: over {WARN_SKEW_S / 60:.0f} min, tokens can be refused as expired or not yet "
                            "valid", fix)
    return Result(OK, found)


# ------------------------------------------------------------------------------------------------ 8. MLflow
def supported_mlflow() -> str:
    """The supported MLflow range: the installed plugin's ``mlflow-skinny`` requirement, else
    :data:`SUPPORTED_MLFLOW`."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    try:
        for line in requires(DISTRIBUTION) or []:
            requirement = Requirement(line)
            if _normal(requirement.name) == "mlflow-skinny" and requirement.marker is None:
                lower_first = sorted(map(str, requirement.specifier), key=lambda s: not s.startswith(">"))
                return ",".join(lower_first)
    except (PackageNotFoundError, ValueError):
        pass
    return SUPPORTED_MLFLOW


def check_mlflow(ctx: Context) -> Result:
    """The imported MLflow's version (``mlflow.version.VERSION``: ``mlflow`` and ``mlflow-skinny`` both provide it)
    against :func:`supported_mlflow`."""
    import mlflow.version
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    found, supported = mlflow.version.VERSION, supported_mlflow()
    try:
        inside = SpecifierSet(supported).contains(Version(found), prereleases=True)
    except InvalidVersion:
        inside = False
    if not inside:
        return Result(FAIL, f"MLflow {found} is installed; this plugin supports MLflow {supported}",
                      f"install a supported MLflow: pip install 'mlflow-skinny{supported}' (or 'mlflow{supported}')")
    return Result(OK, f"MLflow {found} (supported: {supported})")


# ------------------------------------------------------------------------------------------------ 9. plugins
def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def scheme_claims() -> dict[tuple[str, str], dict[str, str]]:
    """``(group, scheme) -> {distribution: "name version"}`` for the two MLflow plugin groups, from every installed
    distribution's entry points (a distribution found twice on ``sys.path`` counts once)."""
    from importlib.metadata import distributions

    claims: dict[tuple[str, str], dict[str, str]] = {}
    for dist in distributions():
        name = dist.metadata["Name"] or "?"
        for entry in dist.entry_points:
            if entry.group in GROUPS:
                claims.setdefault((entry.group, entry.name), {}).setdefault(_normal(name), f"{name} {dist.version}")
    return claims


def check_plugins(ctx: Context) -> Result:
    """Who claims ``azureml-registry`` in each MLflow plugin group (MLflow keeps the last one it loads, silently), and
    whether Microsoft's ``azureml-mlflow`` (which claims ``azureml``) is installed beside it."""
    claims = scheme_claims()
    ours, others = [], {}
    for group in GROUPS:
        claimants = claims.get((group, SCHEME), {})
        if _normal(DISTRIBUTION) not in claimants:
            return Result(FAIL, f"nothing installed registers {SCHEME} in {group}: the plugin is not installed in "
                                "this Python environment",
                          f"pip install {DISTRIBUTION} in the environment MLflow runs in")
        ours.append(claimants[_normal(DISTRIBUTION)])
        others.update({k: v for k, v in claimants.items() if k != _normal(DISTRIBUTION)})
    found = f"{SCHEME}:// is {ours[0]}'s (registry store and artifact repository)"
    if others:
        names = ", ".join(sorted(others.values()))
        return Result(FAIL, f"{found}, and also claimed by {names}: MLflow keeps whichever it loads last",
                      f"uninstall {', '.join(sorted(others))} (only one plugin may own {SCHEME}://)")
    microsoft = _azureml_mlflow(claims)
    if microsoft is None:
        return Result(OK, found)
    found += f"; {microsoft} is installed too and claims azureml:// (no conflict)"
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI") or ""
    if not registry_uri.lower().startswith(f"{SCHEME}:"):
        return Result(WARN, f"{found}, and MLFLOW_REGISTRY_URI is not an {SCHEME}:// URI",
                      "set MLFLOW_REGISTRY_URI: without it MLflow uses the tracking URI for the registry, and an "
                      "azureml:// tracking URI (Azure ML jobs) goes to azureml-mlflow's registry, not this plugin")
    return Result(OK, found)


def _azureml_mlflow(claims: dict[tuple[str, str], dict[str, str]]) -> Optional[str]:
    for group in GROUPS:
        found = claims.get((group, "azureml"), {}).get("azureml-mlflow")
        if found:
            return found
    return None
