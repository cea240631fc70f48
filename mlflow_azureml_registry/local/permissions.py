"""Azure RBAC's ``Permissions - List For Resource`` for the emulated workspaces and registries.

``GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/{workspaces|registries}/
{name}/providers/Microsoft.Authorization/permissions`` answers ``{"value": [Permission, ...]}``, one entry per role
assignment of the caller that applies there (spec: Authorization REST API 2022-04-01). The local token holds the
built-in role *AzureML Data Scientist* on the workspaces it is granted and *AzureML Registry User* on the
registries (their definitions as Azure publishes them, below); on any other workspace it holds none: an empty
list (assumed). Tests may set other permissions per resource (:meth:`Permissions.set`).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable, Optional

from .handlers import Request, Response, error_response
from .state import ArmError

PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.machinelearningservices/"
    r"(?P<kind>workspaces|registries)/(?P<name>[^/]+)/providers/microsoft\.authorization/permissions/?$",
    re.IGNORECASE,
)
OPERATION = "Permissions_ListForResource"

# Built-in role definitions (id f6c7c914-8db3-469d-8ca1-694a8f32e121, updated 2023-06-01; id
# 1823dd4f-9b8c-4ab6-ab4e-7397a3684615, 2022-09-27), as `az role definition list` shows them.
DATA_SCIENTIST = {
    "actions": [
        "Microsoft.MachineLearningServices/workspaces/*/read",
        "Microsoft.MachineLearningServices/workspaces/*/action",
        "Microsoft.MachineLearningServices/workspaces/*/delete",
        "Microsoft.MachineLearningServices/workspaces/*/write",
    ],
    "notActions": [
        "Microsoft.MachineLearningServices/workspaces/delete",
        "Microsoft.MachineLearningServices/workspaces/write",
        "Microsoft.MachineLearningServices/workspaces/computes/*/write",
        "Microsoft.MachineLearningServices/workspaces/computes/*/delete",
        "Microsoft.MachineLearningServices/workspaces/computes/listKeys/action",
        "Microsoft.MachineLearningServices/workspaces/listKeys/action",
        "Microsoft.MachineLearningServices/workspaces/hubs/write",
        "Microsoft.MachineLearningServices/workspaces/hubs/delete",
        "Microsoft.MachineLearningServices/workspaces/featurestores/write",
        "Microsoft.MachineLearningServices/workspaces/featurestores/delete",
    ],
    "dataActions": [],
    "notDataActions": [],
}
REGISTRY_USER = {
    "actions": [
        "Microsoft.MachineLearningServices/registries/read",
        "Microsoft.MachineLearningServices/registries/assets/*",
    ],
    "notActions": [],
    "dataActions": [],
    "notDataActions": [],
}
READER = {"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}
"""The built-in *Reader* role (id acdd72a7-3385-48ef-bd42-f606fba81ae7), for tests that take write access away."""


class Permissions:
    """Answers the permissions path; ``granted(kind, name)`` says whether the token holds the default role there."""

    def __init__(self, subscription_id: str, resource_group: str, granted: Callable[[str, str], bool]) -> None:
        self.subscription_id, self.resource_group = subscription_id, resource_group
        self._granted = granted
        self._set: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def set(self, kind: str, name: str, permissions: Optional[list[dict[str, Any]]]) -> None:
        """Answer ``permissions`` for workspace or registry ``name`` (``kind``: ``workspaces`` or ``registries``);
        None: the default again."""
        key = (kind.lower(), name.lower())
        if permissions is None:
            self._set.pop(key, None)
        else:
            self._set[key] = copy.deepcopy(permissions)

    def dispatch(self, request: Request) -> Optional[tuple[Response, str, Optional[str], Optional[str]]]:
        """(response, operation, workspace, registry) for the permissions path (for the request log), else None."""
        match = PATH.match(request.path)
        if match is None:
            return None
        kind, name = match["kind"].lower(), match["name"]
        where = (name, None) if kind == "workspaces" else (None, name)
        try:
            return self._answer(request, match, kind, name), OPERATION, *where
        except ArmError as err:
            return error_response(err), OPERATION, *where

    def _answer(self, request: Request, match: re.Match[str], kind: str, name: str) -> Response:
        if request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"The HTTP method '{request.method}' is not supported.", mfe=False)
        if not request.query.get("api-version"):  # required on every ARM operation (spec); any value taken
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                mfe=False,
            )
        if match["sub"].lower() != self.subscription_id.lower():
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{match['sub']}' could not be found.",
                           mfe=False)
        if match["rg"].lower() != self.resource_group.lower():
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found.",
                           mfe=False)
        value = self._set.get((kind, name.lower()))
        if value is None:
            default = DATA_SCIENTIST if kind == "workspaces" else REGISTRY_USER
            value = [default] if self._granted(kind, name) else []
        return Response(200, {"value": copy.deepcopy(value)})
