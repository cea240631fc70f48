"""MLflow stages on Azure ML's own ``stage`` field, so Studio, the CLI and ``MLClient`` show them.

Mapping (design.md has the full table, tested row by row):
- reading: ``Staging``/``Production``/``Archived`` in any case -> MLflow's name; ``None`` in any case,
  ``Development`` (the service default), null, and any value MLflow does not know -> ``"None"``;
- writing: MLflow ``None`` -> ``Development`` (what Azure ML shows for a fresh version); the
  others as MLflow spells them;
- MLflow's ``Archived`` is a stage; Azure ML's ``isArchived`` hides an asset from default lists.
  They are independent: transitions never touch ``isArchived``, and the plugin lists with
  ``listViewType=All`` so Azure-archived versions stay visible to MLflow, as they stay loadable.
"""

from __future__ import annotations

from typing import Any, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

MLFLOW_STAGES = ("None", "Staging", "Production", "Archived")
AZURE_DEFAULT_STAGE = "Development"
LIST_VIEW = "All"


def mlflow_stage(azure_stage: Optional[str]) -> str:
    if isinstance(azure_stage, str):
        for stage in MLFLOW_STAGES[1:]:
            if azure_stage.lower() == stage.lower():
                return stage
    return "None"


def canonical(stage: Any) -> str:
    """MLflow's stage name for user input (case-insensitive, nothing stripped), else ``INVALID_PARAMETER_VALUE``.

    MLflow's own ``get_canonical_stage`` decides, so its wording reaches the user ("Invalid Model Version
    stage: <stage>. Value must be one of ..."); a non-string, which it would fail on with ``AttributeError``,
    gets the same message.
    """
    from mlflow.entities.model_registry.model_version_stages import get_canonical_stage

    from .validation import clip, short

    if isinstance(stage, str):
        try:
            return get_canonical_stage(stage)
        except MlflowException as exc:  # MLflow quotes the whole input
            raise MlflowException(clip(exc.message, inputs=(stage,)), error_code=INVALID_PARAMETER_VALUE) from None
    raise MlflowException(
        f"Invalid Model Version stage: {short(stage)}. Value must be one of {', '.join(MLFLOW_STAGES)}.",
        error_code=INVALID_PARAMETER_VALUE,
    )


def azure_stage(mlflow_stage_name: str) -> str:
    return AZURE_DEFAULT_STAGE if mlflow_stage_name == "None" else mlflow_stage_name


def server_filter(stages: set[str]) -> Optional[str]:
    """The ``stage=`` list filter that narrows a query for exactly one pushed-down stage, if any.

    ``None`` gathers several Azure values (Development, null, unknown), so it cannot be pushed down.
    """
    if len(stages) == 1:
        (only,) = stages
        if only != "None":
            return only
    return None
