"""What Azure ML cannot do, refused before any network call with a message that says what to do instead.

Kept apart from the store so the store reads as what it does. Every method of MLflow's
``AbstractStore`` that has no Azure ML meaning is overridden here explicitly (the base class does
not enforce abstract methods; a forgotten one would silently return ``None``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import NOT_IMPLEMENTED, RESOURCE_DOES_NOT_EXIST

RENAME_MESSAGE = (
    "Azure ML model containers cannot be renamed, so rename_registered_model is not supported. "
    "Register the versions under the new name instead (e.g. MlflowClient().copy_model_version("
    "'models:/{name}/<version>', '{new_name}') for each version you need)."
)
DELETE_MODEL_MESSAGE = (
    "Azure ML model containers cannot be deleted, so delete_registered_model is not supported. "
    "Delete its versions instead (MlflowClient().delete_model_version('{name}', <version>)); the empty "
    "container stays, and its version numbers are never reused."
)
PROMPT_TAG = "mlflow.prompt.is_prompt"
WEBHOOKS_MESSAGE = (
    "Model registry webhooks are not supported on the Azure ML model registry. Use Azure Event Grid "
    "events of the Azure ML workspace (ModelRegistered, ModelDeployed) instead."
)


def refuse(message: str) -> NoReturn:
    raise MlflowException(message, error_code=NOT_IMPLEMENTED)


class WebhooksRefused:
    """Webhook creation: refused clearly rather than half-working. Webhook reads answer as an empty registry does.
    (MLflow 3's prompt methods are not here: they work, see :mod:`.prompts`.)"""

    # Webhooks: none can be created, so there are none to list or find. MLflow's server lists the
    # webhooks of an event after every registry write (``deliver_webhook``); that must find nothing
    # quietly, not log a NOT_IMPLEMENTED traceback per write.
    def create_webhook(self, *args: Any, **kwargs: Any) -> NoReturn:
        refuse(WEBHOOKS_MESSAGE)

    def list_webhooks(self, *args: Any, **kwargs: Any) -> Any:
        """An empty ``PagedList`` with no next page: this registry holds no webhooks."""
        from mlflow.store.entities.paged_list import PagedList

        return PagedList([], None)

    def list_webhooks_by_event(self, *args: Any, **kwargs: Any) -> Any:
        """An empty ``PagedList``, as for :meth:`list_webhooks`."""
        from mlflow.store.entities.paged_list import PagedList

        return PagedList([], None)

    def get_webhook(self, webhook_id: Any = None, *args: Any, **kwargs: Any) -> NoReturn:
        _no_webhook(webhook_id)

    def update_webhook(self, webhook_id: Any = None, *args: Any, **kwargs: Any) -> NoReturn:
        _no_webhook(webhook_id)

    def delete_webhook(self, webhook_id: Any = None, *args: Any, **kwargs: Any) -> NoReturn:
        _no_webhook(webhook_id)

    def test_webhook(self, webhook_id: Any = None, *args: Any, **kwargs: Any) -> NoReturn:
        _no_webhook(webhook_id)


def _no_webhook(webhook_id: Any) -> NoReturn:
    """MLflow's SQL registry's answer for an unknown id (``RESOURCE_DOES_NOT_EXIST``), and why there is none."""
    raise MlflowException(
        f"Webhook with ID {webhook_id} not found. {WEBHOOKS_MESSAGE}", error_code=RESOURCE_DOES_NOT_EXIST
    )
