"""Round trips per MlflowClient call: measured on the local workspace, next to the minimum the REST API allows.

The minimum is derived from MLflow's own call sequence (what MLflow asks the store for, e.g. the
``get_registered_model`` it makes before most calls) and from what the Azure ML REST API offers (no
PATCH, no batch reads, aliases on the container). Counts are deterministic, so the test suite
asserts them (tests/integration/test_round_trips.py) and a regression fails CI.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .counting import count_requests


@dataclass(frozen=True)
class Row:
    call: str
    control_plane: int
    blob: int
    minimum_control_plane: int
    why: str
    critical_path: Optional[float] = None  # wall time / injected latency
    chain: Optional[int] = None  # the longest chain of control-plane requests each sent after the last one's answer
    minimum_chain: Optional[int] = None  # what the call needs (CRITICAL)


# call -> (minimum control-plane requests with MLflow >= 2.21, of which MLflow's own prompt checks, why).
# MLflow 2.21+ calls get_registered_model before most operations (a prompt check); older MLflow does not.
MINIMUM = {
    "get_registered_model": (1, 0, "GET container. latest_versions load on first read only"),
    "get_model_version": (2, 0, "GET version + GET container (aliases live on the container)"),
    "get_latest_versions": (3, 1, "MLflow's GET container, then GET container (aliases) + one page of versions"),
    "transition_model_version_stage": (
        5, 1, "MLflow's GET container; GET + PUT version (no PATCH); GET + PUT container: the aliases it returns, "
              "and the model's last update, which MLflow moves with a transition"),
    "set_model_version_tag": (3, 1, "MLflow's GET container; GET + PUT version (no PATCH)"),
    "set_registered_model_alias": (4, 1, "MLflow's GET container; GET version (must exist); GET + PUT container"),
    "register_model (first in process)": (
        7, 0, "GET container (404) + PUT; GET container; datastore + listSecrets (once per process); PUT version; "
              "PUT container (the model's last update is the version's creation, as in MLflow). "
              "Blobs: HEAD (reuse?), one PUT per file, the SHA-256 manifest, the completion marker"),
    "register_model (second, same files)": (
        4, 0, "GET container (exists); GET container (nextVersion); PUT version; PUT container (last update). "
              "Blobs: HEAD (reused), manifest if absent"),
    "delete_model_version": (
        5, 1, "MLflow's GET container; GET version (it must exist); DELETE version; GET + PUT container: its "
              "aliases go with it, and the model's last update is the delete, as in MLflow"),
    "load_model('models:/<name>@<alias>') cold": (
        6, 1, "GET container + GET version (alias); MLflow's GET container; GET version (download URI); "
              "datastore + listSecrets. Blobs: one listing, the manifest, one GET per file (verified as it streams)"),
}

# Where the plugin spends more than the minimum, and why (safety, not waste): call -> (extra requests, why).
# Writes also hold the model's write lease (azure/leases.py): two blob requests (acquire, release), as the
# REST API has no conditional writes; blob requests are listed beside these control-plane counts.
EXTRA = {
    "register_model (first in process)": (3, "the create protocol: the container read again under the write lease "
                                          "(nextVersion after the upload) and the version read after the PUT "
                                          "(verify the registration id); a new model's container is looked up "
                                          "again once its write lease is held"),
    "register_model (second, same files)": (2, "the create protocol: the container read again under the write lease "
                                           "(nextVersion after the upload), the version read after the PUT"),
}


# The same calls on an Azure ML registry (issue #19). Registry writes are long-running operations: each PUT or DELETE
# is answered 202 + Location and polled; the local registry finishes at the first poll, so each write costs one poll
# here (on Azure, more: each poll the service answers 202 adds one, after a pause of 0.1, 0.2, 0.4, ... s). The last
# poll answers only {"assetId": ...}, so a version or container that the call returns is read back with a GET.
REGISTRY_MINIMUM = {
    "get_registered_model": (1, 0, "GET container"),
    "get_model_version": (2, 0, "GET version + GET container (aliases)"),
    "get_latest_versions": (3, 1, "MLflow's GET container, then GET container + one page of versions"),
    "transition_model_version_stage": (
        8, 1, "MLflow's GET container; GET version, PUT + 1 poll, GET version (the stored times MLflow returns); "
              "GET container, PUT + 1 poll (aliases, last update)"),
    "set_model_version_tag": (4, 1, "MLflow's GET container; GET version, PUT + 1 poll"),
    "set_registered_model_alias": (
        5, 1, "MLflow's GET container; GET version (must exist); GET container, PUT + 1 poll"),
    "register_model (first in process)": (
        12, 0, "registry discovery (once per process); GET container (404), PUT + 1 poll, GET (the new model's "
               "times); GET container (must exist); pending upload (tempdatarefs); PUT version + 1 poll, GET version "
               "(the registration id, and the answer); PUT container + 1 poll (the model's last update). Blobs: a "
               "listing (the pending upload must be empty), one PUT per file and the SHA-256 manifest, into the "
               "version's own container (no reuse: each version "
               "gets its own pending upload)"),
    "register_model (second, same files)": (
        8, 0, "GET container (exists); pending upload; PUT version + 1 poll, GET version; PUT container + 1 poll. "
              "Blobs: every file again (a registry version owns its files)"),
    "delete_model_version": (
        7, 1, "MLflow's GET container; GET version (must exist); DELETE + 1 poll; GET container, PUT + 1 poll"),
    "load_model('models:/<name>@<alias>') cold": (
        6, 1, "registry discovery; GET container + GET version (alias); MLflow's GET container; GET version "
              "(download URI); data reference (a read SAS). Blobs: one listing, the manifest, one GET per file"),
}
REGISTRY_EXTRA = {
    "register_model (first in process)": (3, "a new model's container looked up again once its write lock is held; "
                                          "nextVersion read again under the write lock; the version looked up "
                                          "just before its PUT (a writer on another machine, which the lock "
                                          "does not reach, may have made it)"),
    "register_model (second, same files)": (2, "nextVersion read again under the write lock; the version looked up "
                                           "just before its PUT"),
    "load_model('models:/<name>@<alias>') cold": (1, "the artifact repository reads the version again: MLflow builds "
                                                  "it from the download URI alone, and the data reference needs the "
                                                  "version's blob URI, which changes between reads (replicas)"),
}


# The critical path: the longest chain of control-plane requests each sent after the previous one's answer
# (measured with latency injected: `longest_chain`), next to the minimum the plugin's design needs. Requests that do
# not need each other's answers go out together (mlflow_azureml_registry/concurrency.py): a version and its model's
# container, a model's container and its versions, a transition's archived versions and the model's stamp, a new
# model's name check and the lease's datastore, a registration's model check and the upload datastore.
# call -> (chain with MLflow >= 2.21, of which MLflow's own prompt check, why)
CRITICAL = {
    "get_registered_model": (1, 0, "GET container"),
    "get_model_version": (1, 0, "GET version | GET container, together"),
    "get_latest_versions": (2, 1, "MLflow's GET container; GET container | list versions"),
    "transition_model_version_stage": (4, 1, "MLflow's GET container; GET version | GET container; PUT version; "
                                             "PUT container | PUT archived versions (the transition's time)"),
    "set_model_version_tag": (3, 1, "MLflow's GET container; GET version; PUT version"),
    "set_registered_model_alias": (3, 1, "MLflow's GET container; GET version | GET container; PUT container"),
    "register_model (first in process)": (
        9, 0, "GET container (404) | datastore, then listSecrets; GET container again under the lease; PUT "
              "container; GET container (the model must exist); GET container under the lease (nextVersion); PUT "
              "version; GET version (verify); PUT container (last update). The re-reads under the lease and the "
              "verification are the create protocol's (see EXTRA)"),
    "register_model (second, same files)": (
        6, 0, "GET container (exists); GET container (must exist); GET container under the lease; PUT version; "
              "GET version; PUT container"),
    "delete_model_version": (4, 1, "MLflow's GET container; GET version | GET container; DELETE; PUT container"),
    "load_model('models:/<name>@<alias>') cold": (
        6, 1, "GET container (the alias); GET version; MLflow's GET container; GET version (download URI); "
              "datastore, then listSecrets (its type decides whether there is a secret to ask for)"),
}
REGISTRY_CRITICAL = {
    "get_registered_model": (1, 0, "GET container"),
    "get_model_version": (1, 0, "GET version | GET container"),
    "get_latest_versions": (2, 1, "MLflow's GET container; GET container | list versions"),
    "transition_model_version_stage": (
        7, 1, "MLflow's GET container; GET version | GET container; PUT version, its poll, GET version; PUT "
              "container | PUT archived versions, their polls"),
    "set_model_version_tag": (4, 1, "MLflow's GET container; GET version; PUT version, its poll"),
    "set_registered_model_alias": (4, 1, "MLflow's GET container; GET version | GET container; PUT container, "
                                         "its poll"),
    "register_model (first in process)": (
        15, 0, "discovery; GET container (404); GET again under the lock; PUT container, poll, GET; GET container "
               "(must exist); GET under the lock (nextVersion); pending upload; GET version (404); PUT version, "
               "poll, GET; PUT container, poll"),
    "register_model (second, same files)": (
        10, 0, "GET container (exists); GET container (must exist); GET under the lock; pending upload; GET "
               "version (404); PUT version, poll, GET; PUT container, poll"),
    "delete_model_version": (6, 1, "MLflow's GET container; GET version | GET container; DELETE, poll; PUT "
                                   "container, poll"),
    "load_model('models:/<name>@<alias>') cold": (
        7, 1, "discovery; GET container (alias); GET version; MLflow's GET container; GET version (download URI); "
              "GET version (the artifact repository); data reference"),
}


def critical(call: str, *, registry: bool = False) -> int:
    """The longest chain of requests the call needs, on this MLflow (see :data:`CRITICAL`)."""
    chain, prompt_checks, _ = (REGISTRY_CRITICAL if registry else CRITICAL)[call]
    return chain if prompt_checks_apply() else chain - prompt_checks


def prompt_checks_apply() -> bool:
    """MLflow 2.21+ makes an extra get_registered_model before most registry calls."""
    import mlflow
    from packaging.version import Version

    return Version(mlflow.__version__) >= Version("2.21")


def minimum(call: str, *, registry: bool = False) -> int:
    total, prompt_checks, _ = (REGISTRY_MINIMUM if registry else MINIMUM)[call]
    return total if prompt_checks_apply() else total - prompt_checks


def expected(call: str, *, registry: bool = False) -> int:
    """What the plugin sends: the minimum plus the documented extra."""
    return minimum(call, registry=registry) + (REGISTRY_EXTRA if registry else EXTRA).get(call, (0, ""))[0]


def _scenarios(model_dir: Path) -> list[tuple[str, Callable[[object, str], None]]]:
    import uuid

    import mlflow

    # files never uploaded before: the first call uploads them (a new folder per measurement)
    fresh = Path(tempfile.mkdtemp(prefix="fresh-", dir=model_dir.parent)) / "model"
    shutil.copytree(model_dir, fresh)
    (fresh / "nonce.txt").write_text(uuid.uuid4().hex)

    from mlflow_azureml_registry import session

    def register_first(client, name):
        session.reset()  # a fresh process: the datastore and its SAS are fetched once
        mlflow.register_model(str(fresh), name + "-r")

    def load_cold(client, name):
        session.reset()  # a fresh process: no cached datastore or SAS
        mlflow.pyfunc.load_model(f"models:/{name}@champion")

    return [
        ("get_registered_model", lambda c, n: c.get_registered_model(n)),
        ("get_model_version", lambda c, n: c.get_model_version(n, "1")),
        ("get_latest_versions", lambda c, n: c.get_latest_versions(n, stages=["None"])),
        ("transition_model_version_stage", lambda c, n: c.transition_model_version_stage(n, "1", "Staging")),
        ("set_model_version_tag", lambda c, n: c.set_model_version_tag(n, "1", "k", "v")),
        ("set_registered_model_alias", lambda c, n: c.set_registered_model_alias(n, "champion", "1")),
        ("register_model (first in process)", register_first),
        ("register_model (second, same files)", lambda c, n: mlflow.register_model(str(fresh), n + "-r")),
        ("delete_model_version", lambda c, n: c.delete_model_version(n + "-r", "2")),
        ("load_model('models:/<name>@<alias>') cold", load_cold),
    ]


def measure(
    workspace, model_dir: Path, name: str, *, registry: bool = False, latency_ms: Optional[float] = None
) -> list[Row]:
    """Register ``name`` (one version of ``model_dir``) and measure each call once, in order; with ``registry``, on
    the local workspace's Azure ML registry (through the global registry URI, restored afterwards). With
    ``latency_ms``, every control-plane answer of the measured calls is delayed that long (``--latency``) and each
    row's ``critical_path`` is its wall time divided by it: how many requests had to wait for an earlier answer."""

    import mlflow

    if registry:
        previous = mlflow.get_registry_uri()
        mlflow.set_registry_uri(workspace.azureml_registry_uri())
        try:
            return _measure(workspace, model_dir, name, registry=True, latency_ms=latency_ms)
        finally:
            mlflow.set_registry_uri(previous)
    return _measure(workspace, model_dir, name, registry=False, latency_ms=latency_ms)


def _measure(workspace, model_dir: Path, name: str, *, registry: bool, latency_ms: Optional[float]) -> list[Row]:
    import time
    import warnings

    import mlflow

    from mlflow_azureml_registry.local.latency import Latency

    client = mlflow.MlflowClient()
    client.create_registered_model(name)
    client.create_model_version(name, str(model_dir))
    control = f"127.0.0.1:{workspace.port}"
    rows = []
    for call, run in _scenarios(model_dir):
        mark = len(workspace.requests)
        with warnings.catch_warnings(), count_requests() as counts:
            warnings.simplefilter("ignore")
            if latency_ms:
                workspace.set_latency(Latency(latency_ms))
            started = time.perf_counter()
            try:
                run(client, name)
            finally:
                took = time.perf_counter() - started
                workspace.set_latency(None)
        control_plane = len(workspace.requests) - mark
        blob = sum(v for k, v in counts.items() if k != control)
        extra, table = (REGISTRY_EXTRA, REGISTRY_MINIMUM) if registry else (EXTRA, MINIMUM)
        why = table[call][2] + (f" + {extra[call][0]} extra: {extra[call][1]}" if call in extra and registry else "")
        if not registry and call in EXTRA:
            why = EXTRA[call][1]
        path = round(took * 1000 / latency_ms, 2) if latency_ms else None
        chain = longest_chain(workspace.requests[mark:]) if latency_ms else None
        rows.append(Row(call, control_plane, blob, minimum(call, registry=registry), why, path, chain,
                        critical(call, registry=registry)))
    return rows


def longest_chain(records: list[dict]) -> int:
    """The most control-plane requests in the log that ran one after another: each arrived after the previous one's
    answer had left (``at`` and ``ms`` of the local workspace's request log). Requests sent together overlap and
    count once. With latency injected, this is the number of answers the caller had to wait for in turn, whatever
    else (blob transfers, the client's own work) took time between them."""
    spans = sorted((r["at"], r["at"] + (r.get("ms") or 0) / 1000) for r in records if r.get("at") is not None)
    depth: list[int] = []
    for i, (start, _) in enumerate(spans):
        before = [depth[j] for j in range(i) if spans[j][1] <= start]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


def sample_model_dir() -> Path:
    """A small MLflow sklearn model folder (the files count in blob requests).

    Its requirements are given: inferring them runs the model in a subprocess (about 5 s), and the counts
    only need the folder's files.
    """
    import mlflow.sklearn
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    path = Path(tempfile.mkdtemp(prefix="bench-model-")) / "model"
    mlflow.sklearn.save_model(LogisticRegression(max_iter=300).fit(X, y), path,
                              pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
    return path


def cleanup(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)
