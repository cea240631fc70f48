"""What to do about a failure, in one place for ``doctor`` and the other commands (``gc``): a credential that gives no
token or whose token is refused, a network path that fails, a workspace that cannot be read, and how to tell a
timeout from a refusal in the gateway's errors.
"""

from __future__ import annotations

from typing import Any, Optional

from . import credentials, settings
from .azure.errors import CREDENTIAL_FIX  # one text for every command and MLflow's errors

__all__ = ["CREDENTIAL_FIX", "NETWORK_FIX", "ROLE", "forbidden_fix", "is_timeout", "token_refused_fix",
           "unauthenticated_fix"]

NETWORK_FIX = (
    "check the network path to it: HTTPS_PROXY/NO_PROXY for a proxy, REQUESTS_CA_BUNDLE for a TLS-inspecting one, "
    "DNS for a private endpoint, and MLFLOW_AZUREML_RESOURCE_MANAGER_URL in a sovereign cloud"
)
ROLE = {"workspace": "AzureML Data Scientist", "registry": "AzureML Registry User"}


def token_refused_fix(credential: Any, kind: str = "workspace") -> str:
    """What to do when the service refused the token of ``credential`` (HTTP 401) on a ``kind`` (``workspace`` or
    ``registry``): the local workspace's token is replaced by exporting what ``mlflow-azureml-registry local``
    printed; any other credential signs in again, in the target's tenant."""
    if isinstance(credential, credentials.StaticTokenCredential):
        return (f"{settings.LOCAL_TOKEN} is not the token this local workspace issued: export the lines "
                "`mlflow-azureml-registry local` printed (they change at every start)")
    return ("the service refused the token: sign in again, and check that the credential's tenant is the "
            f"{kind}'s (a token from another tenant is refused); {CREDENTIAL_FIX}")


def unauthenticated_fix(exc: BaseException, credential: Any, kind: str = "workspace") -> str:
    """What to do about the gateway's ``Unauthenticated``: no token at all (the credential failed: the gateway words
    it "could not get a token", azure/arm.py) needs a credential (:data:`CREDENTIAL_FIX`); a token the service
    refused, :func:`token_refused_fix`."""
    if "could not get a token" in str(exc):
        return CREDENTIAL_FIX
    return token_refused_fix(credential, kind)


def forbidden_fix(kind: str, resource_group: Optional[str] = None) -> str:
    """What to do about HTTP 403 ``AuthorizationFailed`` on a workspace or registry. Resource Manager gives that
    answer both for a resource the identity may not read and for one that does not exist (it checks permissions on
    the scope before it looks the resource up: local/FIDELITY.md, Workspaces), so a misspelt name comes first."""
    listing = f"`az ml {kind} list" + (f" -g {resource_group}`" if resource_group else "`")
    return (f"first check the {kind} name and resource group in the URI ({listing} shows the names; Azure answers "
            f"403, not 404, for a {kind} that does not exist); if they are right, ask for a role on the {kind} "
            f"such as {ROLE[kind]}")


def is_timeout(exc: BaseException) -> bool:
    """Whether a gateway error (``AzureMLError``) is a connection or read timeout (no answer at all), as opposed to
    a refusal. azure-core's transports word them "timed out" / "Timeout" (requests' ``ReadTimeout`` and
    ``ConnectTimeout``, azure-core's ``ServiceResponseTimeoutError``)."""
    if getattr(exc, "status", None) is not None:
        return False
    text = str(exc).lower()
    return "timed out" in text or "timeout" in text
