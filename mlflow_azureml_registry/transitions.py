"""Stage transitions: one version's stage, and the archiving of the target stage's others, all or nothing.

Kept apart from the store (MLflow semantics of one call, over the model-asset layer of :mod:`.assets`).
"""

from __future__ import annotations

import copy
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from . import concurrency, mapping, validation
from . import stages as _stages

Json = dict[str, Any]


def transition(assets: Any, name: str, version: Any, stage: Any, archive_existing_versions: bool) -> tuple[Json, Json]:
    """MLflow's ``transition_model_version_stage`` on ``assets`` (a workspace's or registry's model-asset layer):
    the version moved to ``stage`` and, when asked, the target stage's other versions archived, all or nothing
    under the model's write lease. Returns (the version as stored, its container).

    Raises ``INVALID_PARAMETER_VALUE`` for bad input (before any request), MLflow's not-found errors, and, when a
    write fails, that failure after the versions already written were put back (``assets.restore``)."""
    validation.model_name(name)
    validation.version(version)
    target = _stages.canonical(stage)
    if archive_existing_versions and target not in ("Staging", "Production"):
        # MLflow's words; its SQL registry gives no code (INTERNAL_ERROR, HTTP 500, which its REST client
        # retries): a bad parameter is INVALID_PARAMETER_VALUE (docs/design.md, differences).
        raise MlflowException(
            f"Model version transition cannot archive existing model versions because '{stage}' is not an "
            "Active stage. Valid stages are ['Staging', 'Production']",
            error_code=INVALID_PARAMETER_VALUE,
        )
    with assets.writing(name):
        # Under the lease nothing of ours changes the model meanwhile: the version, the container and (when
        # archiving) the target stage's versions are read at once.
        reads = [lambda: assets.version(name, version), lambda: assets.container(name)]
        if archive_existing_versions:
            reads.append(lambda: list(assets.versions(name, stage=target)))
        resource, container, *in_target = concurrency.together(*reads)
        originals = [copy.deepcopy(resource)]  # what to put back if the transition cannot finish
        resource.setdefault("properties", {})["stage"] = _stages.azure_stage(target)
        updated = assets.put_version(name, resource, mapping.TOUCH)
        # MLflow stamps the archived versions and the model with the transition's own time: their writes go
        # out together once the version's is done.
        stamp = mapping.last_updated(updated)
        archived = []
        for other in in_target[0] if in_target else []:
            other_stage = mapping.mlflow_stage((other.get("properties") or {}).get("stage"))
            if other.get("name") != updated.get("name") and other_stage == target:
                archived.append((copy.deepcopy(other), other))
                other["properties"]["stage"] = "Archived"
        writes = [
            lambda other=other: assets.put_version(name, other, stamp, answer=False)
            for _, other in archived
        ]
        writes.append(lambda: assets.put_container(name, container, stamp, answer=False))
        results = concurrency.outcomes(*writes)
        # a failed PUT was read back (assets._settled): it changed nothing
        originals += [original for (original, _), (_, error) in zip(archived, results) if error is None]
        failure = next((error for _, error in results if error is not None), None)
        if failure is not None:
            if not isinstance(failure, MlflowException):
                raise failure
            # All or nothing, while the lease is held: the model keeps its old stages, or the error says
            # exactly which versions could not be put back.
            raise assets.restore(name, originals, failure) from None
    return updated, container

