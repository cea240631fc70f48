"""Read-only questions ``mlflow-azureml-registry doctor`` asks Azure beyond the model-asset operations: the
service's clock, and what the caller's role assignments allow on a workspace or registry.

Neither writes anything. Sources: the ``Date`` header (RFC 9110 §6.6.1: an origin server with a clock sends it on
every answer); Azure RBAC's ``Permissions - List For Resource`` (``Microsoft.Authorization``, api-version
2022-04-01: "Gets all permissions the caller has for a resource"), whose answer lists, per role assignment that
applies at the scope, its ``actions`` and ``notActions``; an action is allowed when some entry's ``actions`` match
it and none of that entry's ``notActions`` do, ``*`` matching any characters, case-insensitively (Azure RBAC,
"Understand Azure role definitions"). Deny assignments are not in that answer.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Optional

from ..settings import HttpSettings
from .arm import ArmClient
from .environment import environment_http_settings
from .errors import AzureMLError
from .workspace import Target

PERMISSIONS_API_VERSION = "2022-04-01"
"""Azure RBAC's ``Permissions_ListForResource``, newest stable version."""
METADATA_PATH = "/metadata/endpoints"
"""Resource Manager's cloud metadata: answered without a token (recorded; local/FIDELITY.md), so the clock can be
read before (and whether or not) a credential works."""
METADATA_API_VERSION = "2022-09-01"


@dataclass(frozen=True)
class ClockReading:
    """The service's clock against the local one, in seconds (Unix time)."""

    server: float
    """From the answer's ``Date`` header: whole seconds."""
    local: float
    """The local clock halfway through the request."""
    round_trip: float
    status: int

    @property
    def skew(self) -> float:
        """Local minus service time: positive when the local clock is ahead. ``Date`` drops the fraction of its
        second, so the service's time is taken as the middle of that second; uncertain by half a second plus half
        the round trip."""
        return self.local - (self.server + 0.5)


def service_clock(endpoint: str, http: HttpSettings, clock: Callable[[], float] = time.time) -> ClockReading:
    """Read ``endpoint``'s clock: ``GET {endpoint}/metadata/endpoints`` without a token (any status will do: every
    answer carries ``Date``), the request timed by ``clock``. Proxies and CA bundle as for every client
    (:mod:`.environment`). Raises ``AzureMLError`` when the endpoint cannot be reached or sends no ``Date``."""
    from azure.core import PipelineClient
    from azure.core.exceptions import AzureError
    from azure.core.pipeline.policies import HeadersPolicy, ProxyPolicy, UserAgentPolicy
    from azure.core.pipeline.transport import RequestsTransport
    from azure.core.rest import HttpRequest

    from .arm import _user_agent

    base = endpoint.rstrip("/")
    options = environment_http_settings(base)
    policies = [ProxyPolicy(proxies=options.pop("proxies")), HeadersPolicy(), UserAgentPolicy(_user_agent())]
    client = PipelineClient(base_url=base, policies=policies, transport=RequestsTransport(**options))
    request = HttpRequest("GET", f"{base}{METADATA_PATH}?api-version={METADATA_API_VERSION}")
    try:
        before = clock()
        response = client.send_request(
            request, connection_timeout=http.connect_timeout, read_timeout=http.read_timeout
        )
        after = clock()
    except AzureError as exc:
        raise AzureMLError(f"reading the clock of {base}: could not reach it: {exc.message}") from None
    finally:
        client.close()
    header = response.headers.get("Date")
    try:
        server = parsedate_to_datetime(header).timestamp() if header else None
    except (TypeError, ValueError):
        server = None
    if server is None:
        raise AzureMLError(f"reading the clock of {base}: its answer carries no valid Date header ({header!r})")
    return ClockReading(server=server, local=(before + after) / 2, round_trip=after - before,
                        status=response.status_code)


@dataclass(frozen=True)
class Permission:
    """One entry of the permissions answer (one role assignment that applies at the scope)."""

    actions: tuple[str, ...]
    not_actions: tuple[str, ...]

    def allows(self, action: str) -> bool:
        return _matches_any(action, self.actions) and not _matches_any(action, self.not_actions)


def _matches_any(action: str, patterns: tuple[str, ...]) -> bool:
    action = action.lower()
    # fnmatch's '[' and '?' have no meaning in Azure action strings: only '*' is a wildcard there.
    return any(fnmatch.fnmatchcase(action, p.lower().replace("[", "[[]").replace("?", "[?]")) for p in patterns)


def allowed(permissions: list[Permission], action: str) -> bool:
    """Whether any role assignment in ``permissions`` allows ``action`` (e.g.
    ``Microsoft.MachineLearningServices/workspaces/models/versions/write``)."""
    return any(p.allows(action) for p in permissions)


class ResourceManagerProbe:
    """Resource Manager itself (not a workspace's or registry's model operations), with the plugin's credential."""

    def __init__(self, endpoint: str, credential: Any, http: HttpSettings) -> None:
        self._arm = ArmClient(endpoint, credential, http)

    def close(self) -> None:
        self._arm.close()

    def permissions(self, target: Target) -> list[Permission]:
        """The caller's effective permissions on ``target`` (a workspace, or a registry whose subscription and
        resource group are known): ``GET {target}/providers/Microsoft.Authorization/permissions``, every page.
        Raises ``AzureMLError`` (``Forbidden``, ``Unauthenticated``, ...) as any control-plane call."""
        found: list[Permission] = []
        link: Optional[str] = f"{target.arm_path}/providers/Microsoft.Authorization/permissions"
        params: Optional[dict[str, Any]] = {"api-version": PERMISSIONS_API_VERSION}
        while link:
            page = self._arm.request("GET", link, params=params, what=f"permissions on {target.kind} {target.name!r}")
            params = None
            body = page.body if isinstance(page.body, dict) else {}
            for entry in body.get("value") or []:
                if isinstance(entry, dict):
                    found.append(Permission(_strings(entry.get("actions")), _strings(entry.get("notActions"))))
            link = body.get("nextLink")
        return found


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()
