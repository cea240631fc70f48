"""URL patterns -> handlers, and the authentication/authorisation ARM applies before any of them.

ARM matches the fixed segments of a path case-insensitively (``resourcegroups`` works as well as
``resourceGroups``) and keeps the names it captures as sent; the patterns below do the same.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Callable, Optional

from . import handlers
from .handlers import Request, Response
from .permissions import Permissions
from .registry_http import RegistryRouter
from .state import ArmError, ServiceState

_WS = (
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"microsoft\.machinelearningservices/workspaces/(?P<ws>[^/]+)"
)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str  # the spec's operationId, also written to the request log
    action: str  # RBAC action, for the 403 message
    handler: Callable[..., Response]


def _route(method: str, tail: str, operation: str, action: str, handler: Callable[..., Response]) -> Route:
    return Route(method, re.compile(_WS + tail + "$", re.IGNORECASE), operation, action, handler)


_NAME = r"(?P<name>[^/]+)"
_VERSION = r"(?P<version>[^/]+)"
ROUTES = [
    _route("GET", r"/models", "ModelContainers_List", "models/read", handlers.list_models),
    _route("GET", rf"/models/{_NAME}", "ModelContainers_Get", "models/read", handlers.get_model),
    _route("PUT", rf"/models/{_NAME}", "ModelContainers_CreateOrUpdate", "models/write", handlers.put_model),
    _route("DELETE", rf"/models/{_NAME}", "ModelContainers_Delete", "models/delete", handlers.delete_model),
    _route(
        "GET",
        rf"/models/{_NAME}/versions",
        "ModelVersions_List",
        "models/versions/read",
        handlers.list_versions,
    ),
    _route(
        "GET",
        rf"/models/{_NAME}/versions/{_VERSION}",
        "ModelVersions_Get",
        "models/versions/read",
        handlers.get_version,
    ),
    _route(
        "PUT",
        rf"/models/{_NAME}/versions/{_VERSION}",
        "ModelVersions_CreateOrUpdate",
        "models/versions/write",
        handlers.put_version,
    ),
    _route(
        "DELETE",
        rf"/models/{_NAME}/versions/{_VERSION}",
        "ModelVersions_Delete",
        "models/versions/delete",
        handlers.delete_version,
    ),
    _route("GET", r"/datastores", "Datastores_List", "datastores/read", handlers.list_datastores),
    _route("GET", rf"/datastores/{_NAME}", "Datastores_Get", "datastores/read", handlers.get_datastore),
    _route(
        "POST",
        rf"/datastores/{_NAME}/listSecrets",
        "Datastores_ListSecrets",
        "datastores/listsecrets/action",
        handlers.list_secrets,
    ),
    _route("GET", rf"/jobs/{_NAME}", "Jobs_Get", "jobs/read", handlers.get_job),
]
METADATA_PATH = "/metadata/endpoints"


@dataclass
class Outcome:
    """A response plus what the request log wants to know about how it was routed."""

    response: Response
    operation: Optional[str] = None
    workspace: Optional[str] = None
    registry: Optional[str] = None


class Router:
    """Authenticates, authorises and dispatches one request against a :class:`ServiceState`."""

    def __init__(
        self,
        state: ServiceState,
        token: str,
        granted_workspaces: set[str],
        metadata: Callable[[], object],
        principal_id: str,
        registries: Optional[RegistryRouter] = None,
        permissions: Optional[Permissions] = None,
    ) -> None:
        self.registries = registries
        self.permissions = permissions
        self.state = state
        self.token = token
        self.granted = {w.lower() for w in granted_workspaces}
        self.metadata = metadata
        self.principal_id = principal_id

    def dispatch(self, request: Request) -> Outcome:
        if request.method == "GET" and request.path.rstrip("/") == METADATA_PATH:
            return Outcome(Response(200, self.metadata()), "Metadata_Endpoints")  # unauthenticated
        denied = self._authenticate(request)
        if denied is not None:
            return Outcome(denied)
        listed = self.permissions.dispatch(request) if self.permissions is not None else None
        if listed is not None:  # Azure RBAC's own answer about the caller (permissions.py), before any RBAC check
            response, operation, workspace, registry = listed
            return Outcome(response, operation, workspace, registry)
        answered = self.registries.dispatch(request) if self.registries is not None else None
        if answered is not None:  # discovery, the registry data plane, operation polls (registry_http.py)
            response, operation, registry = answered
            return Outcome(response, operation, registry=registry)
        matched_path = False
        for route in ROUTES:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            matched_path = True
            if route.method != request.method:
                continue
            params = match.groupdict()
            outcome = Outcome(Response(500), route.operation, params["ws"])
            try:
                if not request.query.get("api-version"):  # spec: required on every operation; any value
                    raise ArmError(
                        400,
                        "MissingApiVersionParameter",
                        "The api-version query parameter (?api-version=) is required for all requests.",
                        mfe=False,
                    )
                self._authorise(request, params, route)
                args = [params[k] for k in ("name", "version") if params.get(k) is not None]
                outcome.response = route.handler(self.state, request, params["ws"], *args)
            except ArmError as err:
                outcome.response = handlers.error_response(err)
            return outcome
        if matched_path:
            return Outcome(
                handlers.error_response(
                    ArmError(
                        405,
                        "MethodNotAllowed",
                        f"The HTTP method '{request.method}' is not supported.",
                        mfe=False,
                    )
                )
            )
        return Outcome(
            handlers.error_response(
                ArmError(
                    404,
                    "NoRegisteredProviderFound" if "/providers/" in request.path.lower() else "NotFound",
                    f"No route for '{request.method} {request.path}' in the local workspace.",
                    mfe=False,
                )
            )
        )

    def _authenticate(self, request: Request) -> Optional[Response]:
        """401 as ARM answers it: header missing, or a token it did not issue."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            err = ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                mfe=False,
            )
        elif scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.token.encode()
        ):
            err = ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.", mfe=False)
        else:
            return None
        response = handlers.error_response(err)
        response.headers["WWW-Authenticate"] = (
            'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
            f'error_description="{err.message}"'
        )
        return response

    def _authorise(self, request: Request, params: dict[str, str], route: Route) -> None:
        """The token grants one subscription/resource group and some workspaces; ARM says 403 or 404."""
        if params["sub"].lower() != self.state.subscription_id.lower():
            raise ArmError(
                404,
                "SubscriptionNotFound",
                f"The subscription '{params['sub']}' could not be found.",
                mfe=False,
            )
        if params["rg"].lower() != self.state.resource_group.lower():
            raise ArmError(
                404,
                "ResourceGroupNotFound",
                f"Resource group '{params['rg']}' could not be found.",
                mfe=False,
            )
        if params["ws"].lower() not in self.granted:
            scope = request.path
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{self.principal_id}' with object id '{self.principal_id}' does not "
                f"have authorization to perform action 'Microsoft.MachineLearningServices/"
                f"workspaces/{route.action}' over scope '{scope}' or the scope is invalid. If "
                "access was recently granted, please refresh your credentials.",
                mfe=False,
            )
        self.state.workspace(params["ws"])  # 404 for a workspace that does not exist
