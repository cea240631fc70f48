"""The doctor's checks that ask Azure's control plane (1-5 of :mod:`.doctor`): URI, credential, reachability,
permissions and datastore (6, storage, is :mod:`.doctor_storage`). Every request goes through the gateway
(:mod:`.azure`), built fresh for the run (nothing cached by the process's stores is trusted), and sent once, without
retries (:func:`_http`), so that an endpoint that never answers is reported after one read timeout. Nothing is created
here.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from typing import Any, Optional

from . import credentials, settings
from .azure import errors as az
from .azure.workspace import RegistryRef
from .doctor import FAIL, OK, SKIP, WARN, Context, Result
from .doctor_advice import CREDENTIAL_FIX, NETWORK_FIX, ROLE, forbidden_fix, is_timeout, token_refused_fix
from .registration import UPLOAD_DATASTORE  # where model files are uploaded (and write leases kept)

WRITE_ACTIONS = {
    "workspace": (
        "Microsoft.MachineLearningServices/workspaces/models/write",
        "Microsoft.MachineLearningServices/workspaces/models/versions/write",
    ),
    "registry": ("Microsoft.MachineLearningServices/registries/assets/write",),
}
"""Azure RBAC actions a registration needs (operation names of Azure ML's activity log; the built-in roles AzureML
Data Scientist and AzureML Registry User grant them)."""

def _http() -> settings.HttpSettings:
    """The plugin's timeouts (``MLFLOW_AZUREML_HTTP_TIMEOUT``, ``MLFLOW_AZUREML_CONNECT_TIMEOUT``) with no retry,
    whatever ``MLFLOW_AZUREML_RETRY_TOTAL`` says: a retry of a request that timed out waits the whole timeout again,
    so a control plane or storage account that accepts connections and never answers would be reported only after
    twice the read timeout. A doctor reports what the service answers now; a throttled or failing service's check
    says to try again in a few minutes."""
    return dataclasses.replace(settings.http_settings(), retry_total=0)


def failure_text(exc: Exception) -> str:
    """An error's one-line text (the gateway's errors carry status, codes and the request id, never a secret)."""
    return credentials.redact(" ".join(str(exc).split()))


# ------------------------------------------------------------------------------------------------ 1. URI
def check_uri(ctx: Context) -> Result:
    """The URI (argument, else ``MLFLOW_REGISTRY_URI``) parsed by the plugin's own parser (:mod:`.uri`)."""
    from .uri import InvalidUri, parse_registry_uri

    uri = ctx.uri_argument if ctx.uri_argument is not None else os.environ.get("MLFLOW_REGISTRY_URI")
    if not uri:
        return Result(FAIL, "no registry URI: none given, and MLFLOW_REGISTRY_URI is not set",
                      "pass one (mlflow-azureml-registry doctor azureml-registry://subscriptions/<sub>/resourceGroups"
                      "/<rg>/workspaces/<ws>) or export MLFLOW_REGISTRY_URI")
    try:
        target = parse_registry_uri(uri)
    except InvalidUri as exc:
        return Result(FAIL, str(exc), "use one of the forms in the README (Registry URI)")
    ctx.values["target"] = target
    endpoint = settings.resource_manager_url()
    if isinstance(target, RegistryRef):
        where = (f"in subscription {target.subscription_id}, resource group {target.resource_group}; "
                 if target.located else "")
        return Result(OK, f"Azure ML registry {target.name!r} ({where}to be looked up through registry discovery: "
                          "check 3 says whether it exists)")
    return Result(OK, f"workspace {target.name!r} in subscription {target.subscription_id}, resource group "
                      f"{target.resource_group}; requests go to {endpoint}")


# ------------------------------------------------------------------------------------------------ 2. credential
def check_credential(ctx: Context) -> Result:
    """The credential the plugin's chain picks (:func:`credentials.resolve`), a token from it for Resource Manager,
    and whom the token is for (its claims, decoded without verifying)."""
    endpoint = settings.resource_manager_url()
    credential = credentials.resolve(endpoint)
    source = _credential_source(credential, endpoint)
    try:
        token = credential.get_token(f"{endpoint}/.default")
    except Exception as exc:  # noqa: BLE001 - azure-identity's errors (ClientAuthenticationError and others)
        return Result(FAIL, f"{source}: no token: {failure_text(exc)}", CREDENTIAL_FIX)
    ctx.secrets.append(token.token)
    ctx.values["credential"] = credential
    member = getattr(credential, "_successful_credential", None)  # azure-identity: the chain's member that answered
    if member is not None:
        source += f" -> {type(member).__name__}"
    claims = token_claims(token.token)
    static = isinstance(credential, credentials.StaticTokenCredential)
    expiry, said_by = _expiry(token, claims, static)
    if expiry is not None and expiry <= time.time():
        fix = ("export the lines `mlflow-azureml-registry local` printed (its token changes at every start)"
               if static else f"sign in again; {CREDENTIAL_FIX}")
        return Result(FAIL, f"{source}: its token expired {_ago(time.time() - expiry)} ({said_by})", fix)
    valid = f"valid {_duration(expiry - time.time())} ({said_by})" if expiry is not None else said_by
    if claims is None:
        return Result(WARN, f"{source}: a token, which is not a JWT, so whom it is for cannot be read ({valid})",
                      "Entra ID tokens for Resource Manager are JWTs: check that the credential is the one you mean")
    return Result(OK, f"{source}: {describe_claims(claims)}; {valid}")


def _expiry(token: Any, claims: Optional[dict[str, Any]], static: bool) -> tuple[Optional[float], str]:
    """When the token expires (Unix time) and who says so: a JWT's own ``exp`` claim (RFC 7519 §4.1.4) when it has
    one; else the credential's ``expires_on``, except for the local token's credential, which makes that up (now +
    1 h, credentials.py), so the expiry is then unknown."""
    exp = claims.get("exp") if claims else None
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        return float(exp), "the token's exp claim"
    if static:
        return None, "expiry unknown: the token carries none"
    return float(token.expires_on), "as the credential reports"


def _ago(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days ago"
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} hours ago"
    return f"{max(seconds, 0) / 60:.0f} min ago"


def _credential_source(credential: Any, endpoint: str) -> str:
    if isinstance(credential, credentials.StaticTokenCredential):
        return f"the local workspace's token ({settings.LOCAL_TOKEN}, honoured for the loopback endpoint)"
    name = type(credential).__name__
    if name == "DefaultAzureCredential":
        ignored = os.environ.get(settings.LOCAL_TOKEN) and not credentials.is_loopback(endpoint)
        note = f"; {settings.LOCAL_TOKEN} is ignored: {endpoint} is not loopback" if ignored else ""
        return f"DefaultAzureCredential (no interactive login){note}"
    return f"{name}, set with mlflow_azureml_registry.configure()"


def token_claims(token: str) -> Optional[dict[str, Any]]:
    """A JWT's payload, decoded and not verified (only to say whom the token is for), or None for other tokens."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def describe_claims(claims: dict[str, Any]) -> str:
    """Whom a token is for: user (``upn``, ``unique_name``, ``preferred_username``), app (``appid``, ``azp``),
    object id (``oid``) and tenant (``tid``), as Entra ID access tokens carry them."""
    parts = []
    user = claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username")
    if user:
        parts.append(f"user {user}")
    elif claims.get("name"):
        parts.append(f"name {claims['name']!r}")
    app = claims.get("appid") or claims.get("azp")
    if app and not user:
        parts.append(f"app {app}")
    for label, key in (("object id", "oid"), ("tenant", "tid")):
        if claims.get(key):
            parts.append(f"{label} {claims[key]}")
    return ", ".join(parts) or "a token without the usual identity claims (upn, appid, oid, tid)"


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} more days"
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} more hours"
    return f"{seconds / 60:.0f} more minutes"


# ------------------------------------------------------------------------------------------------ 3. reachable
def check_reachable(ctx: Context) -> Result:
    """A workspace: its model list's first page. A registry: registry discovery, then the same on its regional
    endpoint. A 403 is a ``warn`` here (the service answered; check 4 reports the refusal); a timeout is remembered,
    so that the clock check does not wait for the same endpoint again."""
    target, credential = ctx.values["target"], ctx.values["credential"]
    endpoint = settings.resource_manager_url()
    if isinstance(target, RegistryRef):
        from .azure.registry import RegistryGateway

        discovery = settings.registry_discovery_url()
        gateway: Any = RegistryGateway(discovery, target, credential, _http(), scope=f"{endpoint}/.default")
        ctx.closers.append(gateway.close)
        try:
            located = gateway.workspace
        except az.AzureMLError as exc:
            return _control_plane_failure(exc, f"registry discovery at {discovery}", ctx, "registry", discovery)
        where = (f"{located.name!r} found by registry discovery (subscription {located.subscription_id}, resource "
                 f"group {located.resource_group})")
    else:
        from .azure.gateway import AzureMLGateway

        gateway = AzureMLGateway(endpoint, target, credential, _http(),
                                 storage_account_url=_storage_template(), transfer_concurrency=2)
        ctx.closers.append(gateway.close)
        located, where = target, f"{target.name!r}"
    ctx.values["gateway"], ctx.values["located"] = gateway, located
    started = time.monotonic()
    try:
        ctx.values["first_model"] = next(iter(gateway.models.list_containers(page_size=1)), None)
    except az.Forbidden as exc:
        # Not "ok": Resource Manager answers 403 for a workspace that does not exist as for one the identity may not
        # read (local/FIDELITY.md, Workspaces), so the network path works but the target is not confirmed. Not a
        # FAIL either: check 4 reports the refusal, once.
        ctx.values["read_error"] = exc
        return Result(WARN, f"{target.kind} {where}: Resource Manager answered, HTTP 403 (the {target.kind} may not "
                            "exist, or this identity may not read it: check 4)",
                      f"check the {target.kind}'s name in the URI first (check 4 says how)")
    except az.AzureMLError as exc:
        if isinstance(target, RegistryRef):
            endpoint = "its regional endpoint"
        return _control_plane_failure(exc, f"{target.kind} {target.name!r}", ctx, target.kind, endpoint)
    at = "its regional endpoint" if isinstance(target, RegistryRef) else endpoint
    return Result(OK, f"{target.kind} {where} answered at {at} in {(time.monotonic() - started) * 1000:.0f} ms")


def _control_plane_failure(exc: az.AzureMLError, what: str, ctx: Context, kind: str, endpoint: str) -> Result:
    text = failure_text(exc)
    if isinstance(exc, az.Unauthenticated):
        return Result(FAIL, f"{what}: the token was refused: {text}",
                      token_refused_fix(ctx.values.get("credential"), kind))
    if isinstance(exc, az.Forbidden):
        return Result(FAIL, f"{what}: {text}", forbidden_fix(kind))
    if isinstance(exc, az.NotFound):
        listing = "`az ml registry list`" if kind == "registry" else "`az ml workspace list -g <resource group>`"
        return Result(FAIL, f"{what}: not found: {text}",
                      f"check the URI's names (subscription, resource group, {kind}): {listing} shows them")
    if exc.status is None:
        if is_timeout(exc):
            ctx.values.setdefault("timed_out", set()).add(_origin(endpoint))
            return Result(FAIL, f"{what}: timed out, no answer from {endpoint}: {text}",
                          f"it accepts connections and does not answer: {NETWORK_FIX}")
        return Result(FAIL, f"{what}: {text}", NETWORK_FIX)
    return Result(FAIL, f"{what}: {text}", "the service is failing or throttling: try again in a few minutes")


def _origin(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased (how the clock check knows it is the same endpoint)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def timed_out(ctx: Context, url: str) -> bool:
    """Whether an earlier check of this run waited in vain for an answer from ``url``'s endpoint."""
    return _origin(url) in ctx.values.get("timed_out", set())


# ------------------------------------------------------------------------------------------------ 4. permissions
def check_permissions(ctx: Context) -> Result:
    """Read: the listing of check 3. Write: the identity's Azure RBAC permissions on the workspace or registry
    (``Permissions - List For Resource``), so nothing is written; deny assignments are not visible there."""
    from .azure.diagnostics import ResourceManagerProbe, allowed

    located, kind = ctx.values["located"], ctx.values["target"].kind
    read_error = ctx.values.get("read_error")
    if read_error is not None:
        return Result(FAIL, f"read: refused: {failure_text(read_error)}",
                      forbidden_fix(kind, getattr(located, "resource_group", None)))
    first = ctx.values.get("first_model")
    read = f"read: models listed ({'first: ' + repr(first.get('name')) if first else 'none yet'})"
    probe = ResourceManagerProbe(settings.resource_manager_url(), ctx.values["credential"], _http())
    ctx.closers.append(probe.close)
    try:
        permissions = probe.permissions(located)
    except az.AzureMLError as exc:
        return Result(WARN, f"{read}; write: not determined, the permissions API answered: {failure_text(exc)}",
                      "the first registration will tell; a role such as " + ROLE[kind] + " allows it")
    missing = [a for a in WRITE_ACTIONS[kind] if not allowed(permissions, a)]
    if missing:
        return Result(FAIL, f"{read}; write: the identity's role assignments on the {kind} do not allow "
                            f"{', '.join(missing)} (Azure RBAC permissions; nothing was written)",
                      f"ask for a role on the {kind} that allows writing models, such as {ROLE[kind]}")
    return Result(OK, f"{read}; write: allowed by the identity's role assignments (Azure RBAC permissions, "
                      "nothing written; deny assignments are not visible to this check)")


# ------------------------------------------------------------------------------------------------ 5. datastore
def datastore_applies(ctx: Context) -> Optional[str]:
    """Why the datastore check does not apply (a registry), or None (a workspace; or the URI did not parse)."""
    if isinstance(ctx.values.get("target"), RegistryRef):
        return ("a registry has no datastore; its files live in registry-managed storage, reached through "
                "short-lived SAS URIs (data references, pending uploads)")
    return None


def check_datastore(ctx: Context) -> Result:
    """The upload datastore: its storage account and container, and how blobs are reached (a ``listSecrets`` SAS or
    key, or the identity's token). A registry has none."""
    from .azure.sas import sas_expiry

    if ctx.values.get("read_error") is not None:
        return Result(SKIP, "not checked: permissions did not pass (the workspace refused this identity, or does "
                            "not exist)", blocks=True, cause=("permissions",))
    gateway = ctx.values["gateway"]
    try:
        store = gateway.datastores.get(UPLOAD_DATASTORE)
    except az.NotFound as exc:
        return Result(FAIL, f"{UPLOAD_DATASTORE}: not found in the workspace: {failure_text(exc)}",
                      f"the plugin uploads to the datastore named {UPLOAD_DATASTORE} (as the Azure ML SDK does): "
                      "recreate it on the workspace's storage account (`az ml datastore create`)")
    except az.AzureMLError as exc:
        if isinstance(exc, az.Forbidden):
            fix = f"ask for a role on the workspace such as {ROLE['workspace']}"
        elif "AzureBlob" in exc.message:
            fix = f"the plugin needs {UPLOAD_DATASTORE} to be an Azure Blob datastore"
        else:
            fix = NETWORK_FIX if exc.status is None else "see the message"
        return Result(FAIL, f"{UPLOAD_DATASTORE}: {failure_text(exc)}", fix)
    place = f"{UPLOAD_DATASTORE}: account {store.account_name}, container {store.container_name}"
    if store.identity_based:
        return Result(OK, f"{place}, identity-based: blobs are reached with the identity's token (it needs Storage "
                          "Blob Data Contributor on the account; checked next)")
    try:
        kind, secret = gateway.datastores.list_secrets(UPLOAD_DATASTORE)
    except az.Forbidden as exc:
        return Result(WARN, f"{place}; listSecrets refused ({failure_text(exc)}): the plugin reaches blobs with the "
                            "identity's token instead",
                      "give the identity Storage Blob Data Contributor on the storage account (checked next), or a "
                      "role that may list the datastore's secrets")
    except az.AzureMLError as exc:
        return Result(FAIL, f"{place}; listSecrets failed: {failure_text(exc)}", "see the message")
    ctx.secrets.append(secret)
    if kind == "Sas":
        expiry = sas_expiry(secret)
        valid = f", valid {_duration(expiry - time.time())}" if expiry else ""
        return Result(OK, f"{place}; listSecrets gives a SAS{valid}")
    return Result(OK, f"{place}; listSecrets gives the account key")


def _storage_template() -> Optional[str]:
    """The storage URL template for the doctor's gateway; a bad one is the storage check's to report (check 6)."""
    try:
        return settings.storage_account_url_template()
    except settings.SettingError:
        return None
