"""Live mode: the integration and conformance suites against a real Azure ML workspace or registry.

On when ``MLFLOW_AZUREML_LIVE_REGISTRY_URI`` holds an ``azureml-registry://`` URI of a workspace or a registry. The
credential is the plugin's own chain (``DefaultAzureCredential``: ``az login``, ``AZURE_CLIENT_ID``/``_SECRET``/
``_TENANT_ID``, workload or managed identity). Then the ``workspace`` fixture is a :class:`LiveWorkspace`: the
surface tests use that means something on a real target (its registry URI, the environment a fresh process needs,
an ``MLClient``'s arguments), and a skip, with the reason, for anything else the emulator has (its state, request
log, fault and latency hooks, keys and tokens). Tests marked ``emulator_only`` are skipped; ``live_only`` ones run.
Model names get the run's prefix (:func:`name_prefix`), and what the run created is cleaned up at the end
(:mod:`tests.live.cleanup`).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import pytest

LIVE_URI_VARIABLE = "MLFLOW_AZUREML_LIVE_REGISTRY_URI"
NAME_PREFIX = "mlflowazmltest-"
"""Every name a live run gives a model starts with this, then the run id (:data:`RUN_ID`)."""

RUN_ID = time.strftime("%m%d%H%M", time.gmtime()) + uuid.uuid4().hex[:4]
"""This test session's id (a process's): UTC month, day, hour and minute, and 4 random hex digits."""

EMULATOR_WORKSPACE = "local-ws"
EMULATOR_REGISTRY = "local-registry"
"""The local workspace's default workspace and registry names: in live mode they mean the live target."""

PASSED_ON = ("AZURE_", "MLFLOW_AZUREML_", "IDENTITY_", "MSI_", "IMDS_", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
"""Variables a fresh process gets from this one in live mode (credential, endpoints, settings)."""

LIVE_UNFIT: dict[str, str] = {
    "tests/integration/test_registry_surface.py::test_search_registered_models_grammar":
        "searches `name LIKE '<first 6 characters>%'` and expects one model; live, every name starts with the run "
        "prefix",
    "tests/integration/test_registries.py::test_registry_uri_forms_reach_one_registry":
        "names the emulator's registry (`registries/local-registry`) in the test",
    "tests/integration/test_registries.py::test_registry_surface":
        "expects the emulator's registry name (`/registries/local-registry/`) in a download URI",
    "tests/integration/test_registries.py::test_a_registry_uri_naming_the_wrong_subscription_or_group_is_refused":
        "expects the emulator's resource group (`local-rg`) and registry name in the message",
    "tests/integration/test_benchmark_sweep.py":
        "drives the benchmark's raw blob worker against Azurite with the emulator's account key",
    "tests/integration/test_echo_limits.py":
        "registers a model with the fixed name `echo-limits`, outside the run prefix (left behind in the workspace)",
}
"""Tests that cannot run live as written, by node id (parameters ignored) or module path, with the reason; for
modules whose only edit allowed here is a ``pytestmark`` line (a test's own marker is the better place)."""


def live_uri() -> Optional[str]:
    """The live target's URI, or None (emulator mode)."""
    value = os.environ.get(LIVE_URI_VARIABLE, "").strip()
    return value or None


def is_live() -> bool:
    return live_uri() is not None


def name_prefix() -> str:
    """The prefix of every model name of this run in live mode; empty in emulator mode (names stay short)."""
    return f"{NAME_PREFIX}{RUN_ID}-" if is_live() else ""


def live_unfit_reason(nodeid: str) -> Optional[str]:
    """Why the test ``nodeid`` cannot run live (:data:`LIVE_UNFIT`), or None."""
    bare = nodeid.split("[", 1)[0]
    return LIVE_UNFIT.get(bare) or LIVE_UNFIT.get(bare.split("::", 1)[0])


def unreachable(uri: str) -> Optional[str]:
    """Why the live target ``uri`` cannot be used, in one line with what to do, or None when it answers: the
    ``doctor``'s URI, credential, reachable and permissions checks (``mlflow_azureml_registry/doctor_checks.py``: a
    token, the first page of the model list with at most one retry, the identity's Azure RBAC permissions), once per
    session. azure-identity's own log lines are
    kept out (the check's line says it all)."""
    import logging

    from mlflow_azureml_registry import doctor, doctor_checks

    context = doctor.Context(uri)
    identity_log = logging.getLogger("azure.identity")
    propagate, identity_log.propagate = identity_log.propagate, False
    try:
        for title, check in (("URI", doctor_checks.check_uri), ("credential", doctor_checks.check_credential),
                             ("reachable", doctor_checks.check_reachable),
                             ("permissions", doctor_checks.check_permissions)):
            result = doctor._run_one(doctor.Check(title, check), context)
            if result.status == doctor.FAIL:
                fix = f" To fix: {result.fix}" if result.fix else ""
                text = doctor._clean(f"live mode: {LIVE_URI_VARIABLE}={uri}: the {title} check failed: "
                                     f"{result.found}.{fix}", context.secrets)
                return (f"{text}\n(stopping the session: every test would fail the same way; "
                        "`mlflow-azureml-registry doctor` checks the rest)")
    finally:
        identity_log.propagate = propagate
        context.close()
    return None


def _skip(what: str) -> Any:
    pytest.skip(f"emulator only: {what}")


class LiveWorkspace:
    """Stands in for ``LocalWorkspace`` in live mode. ``target_uri`` is the live URI in its short form; the
    emulator's default names (``local-ws``, ``local-registry``) mean the live target; any other name, or an
    attribute only the emulator has, skips the test with the reason."""

    live = True

    def __init__(self, uri: str) -> None:
        from mlflow_azureml_registry.uri import InvalidUri, parse_registry_uri, registry_uri

        try:
            self.target = parse_registry_uri(uri)
        except InvalidUri as exc:
            raise pytest.UsageError(f"{LIVE_URI_VARIABLE}: {exc}") from None
        self.kind = self.target.kind
        self.target_uri = registry_uri(self.target)

    def __repr__(self) -> str:
        return f"LiveWorkspace({self.target_uri!r})"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _skip(f"the test uses workspace.{name}, which a real {self.kind} does not have")

    # -- names and URIs ---------------------------------------------------------------------------------
    def _need(self, kind: str, name: Optional[str], default: str) -> None:
        if self.kind != kind:
            other = "an Azure ML registry" if kind == "registry" else "a workspace"
            pytest.skip(f"live: the test needs {other}; {LIVE_URI_VARIABLE} names a {self.kind} (run again with "
                        f"the other kind to cover it)")
        if name not in (None, default, self.target.name):
            pytest.skip(f"live: the test needs a second {kind} ({name!r}); live mode has one")

    def registry_uri(self, workspace: Optional[str] = None) -> str:
        self._need("workspace", workspace, EMULATOR_WORKSPACE)
        return self.target_uri

    def azureml_registry_uri(self, name: Optional[str] = None) -> str:
        self._need("registry", name, EMULATOR_REGISTRY)
        return self.target_uri

    @property
    def workspace_name(self) -> str:
        self._need("workspace", None, EMULATOR_WORKSPACE)
        return self.target.name

    @property
    def workspaces(self) -> list[str]:
        self._need("workspace", None, EMULATOR_WORKSPACE)
        return [self.target.name]

    @property
    def subscription_id(self) -> str:
        return self._located()[0]

    @property
    def resource_group(self) -> str:
        return self._located()[1]

    def _located(self) -> tuple[str, str]:
        target = self.target
        if not (target.subscription_id and target.resource_group):
            from mlflow_azureml_registry import session

            target = session.gateway(self.target).workspace  # registry discovery names them
        return str(target.subscription_id), str(target.resource_group)

    # -- endpoints, credential, environment ---------------------------------------------------------------
    @property
    def resource_manager_url(self) -> str:
        from mlflow_azureml_registry import settings

        return settings.resource_manager_url()

    @property
    def registry_discovery_url(self) -> str:
        from mlflow_azureml_registry import settings

        return settings.registry_discovery_url()

    def credential(self) -> Any:
        """The plugin's credential for the live target (its own resolution: configured, else the default chain)."""
        from mlflow_azureml_registry import credentials

        return credentials.resolve(self.resource_manager_url)

    @property
    def env(self) -> dict[str, str]:
        """What a fresh process needs to reach the live target: the registry URI, and this process's Azure
        credential and plugin settings; ``AZURE_CONFIG_DIR`` too, so that ``az login`` is found under another
        ``HOME``."""
        env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON) and k != LIVE_URI_VARIABLE}
        config = Path.home() / ".azure"
        if "AZURE_CONFIG_DIR" not in env and config.is_dir():
            env["AZURE_CONFIG_DIR"] = str(config)
        env["MLFLOW_REGISTRY_URI"] = self.target_uri
        return env

    def ml_client_kwargs(self, workspace: Optional[str] = None, *, registry: Optional[str] = None) -> dict[str, Any]:
        """``azure.ai.ml.MLClient`` arguments for the live target (the workspace, or with ``registry=`` the
        registry), with the plugin's credential."""
        if registry is not None:
            self._need("registry", registry, EMULATOR_REGISTRY)
            scope: dict[str, Any] = {"registry_name": self.target.name}
        else:
            self._need("workspace", workspace, EMULATOR_WORKSPACE)
            scope = {"workspace_name": self.target.name}
        subscription, group = self._located()
        return {
            "credential": self.credential(),
            "subscription_id": subscription,
            "resource_group_name": group,
            **scope,
            "enable_telemetry": False,
            "show_progress": False,
        }
