"""``LocalWorkspace``: the emulated control plane and Azurite, started and stopped together.

    with LocalWorkspace() as ws:          # free ports, a fresh CA, a fresh token
        os.environ.update(ws.env)         # what ``mlflow-azureml-registry local`` prints
        MLClient(**ws.ml_client_kwargs()) # the real Azure ML SDK, pointed at it

Two workspaces the token is granted for (``local-ws``, ``local-ws-2``, each with its own storage
account and container) and one it is not (``forbidden-ws``: 403), so cross-workspace flows and
authorisation failures can be tested. One Azure ML registry, ``local-registry``, in the same subscription
and resource group (discovery, data plane and operation polls on the same server; its storage is a fourth
Azurite account): ``MLClient(**ws.ml_client_kwargs(registry="local-registry"))``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import secrets
import shlex
import shutil
import ssl
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Optional

from . import certs
from .azurite import Azurite
from .firewall import RefusingStorage
from .handlers import cloud_metadata
from .permissions import Permissions
from .registry import RegistryState
from .registry_http import AzuriteRegistryStorage, RegistryRouter
from .routing import Router
from .server import ControlPlaneServer, Interceptor, RequestLog
from .state import DEFAULT_PAGE_SIZE, ServiceState

SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000000"
TENANT_ID = "00000000-0000-4000-8000-0000000000aa"
PRINCIPAL_ID = "00000000-0000-4000-8000-0000000000bb"
RESOURCE_GROUP = "local-rg"
WORKSPACES = ("local-ws", "local-ws-2")
FORBIDDEN_WORKSPACE = "forbidden-ws"
REGISTRY = "local-registry"
DEFAULT_DATASTORE = "workspaceblobstore"
IDENTITY_DATASTORE = "workspaceblobstore_identity"
STORAGE_SCOPE = "https://storage.azure.com/.default"
ENV_NAMES = (
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_AZUREML_RESOURCE_MANAGER_URL",
    "MLFLOW_AZUREML_LOCAL_TOKEN",
    "MLFLOW_AZUREML_STORAGE_ACCOUNT_URL",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "MLFLOW_AZUREML_REGISTRY_DISCOVERY_URL",
    "MLFLOW_AZUREML_LOCAL_REGISTRY_URI",
)


def make_token(lifetime_days: int = 30) -> str:
    """A JWT-shaped bearer token Azurite's ``--oauth basic`` accepts (it checks aud, iss, nbf/exp, not
    the signature). The random ``jti`` and signature make it unguessable; the control plane compares
    it verbatim."""
    now = int(time.time())

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")

    claims = {
        "aud": "https://storage.azure.com",
        "iss": f"https://sts.windows.net/{TENANT_ID}/",
        "iat": now - 300,
        "nbf": now - 300,
        "exp": now + lifetime_days * 86400,
        "tid": TENANT_ID,
        "oid": PRINCIPAL_ID,
        "sub": PRINCIPAL_ID,
        "name": "Local User",
        "scp": "user_impersonation",
        "jti": secrets.token_urlsafe(16),
    }
    signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"{part({'typ': 'JWT', 'alg': 'RS256', 'kid': 'local'})}.{part(claims)}.{signature}"


class LocalTokenCredential:
    """A ``TokenCredential`` that hands the local token only to the local workspace and to storage
    scopes (Azurite); any other scope (real ARM, say) is refused rather than answered."""

    def __init__(self, token: str, resource_manager_url: str) -> None:
        self._token = token
        self._allowed = {
            f"{resource_manager_url.rstrip('/')}/.default",
            f"{resource_manager_url.rstrip('/')}/",
            resource_manager_url.rstrip("/"),
            STORAGE_SCOPE,
        }

    def _check(self, scopes: tuple[str, ...]) -> int:
        from azure.core.exceptions import ClientAuthenticationError

        refused = [s for s in scopes if s not in self._allowed]
        if refused:
            raise ClientAuthenticationError(f"The local workspace token is not for scope(s) {refused}.")
        return int(time.time()) + 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, self._check(scopes))

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, self._check(scopes))


class LocalWorkspace:
    """Control plane (HTTPS, in-process threads) + Azurite (child process). See the module docstring."""

    def __init__(
        self,
        port: int = 0,
        request_log: Optional[str] = None,
        *,
        blob_port: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        blob_persistence: str = "memory",
        workdir: Optional[str] = None,
        interceptor: Optional[Interceptor] = None,
        sas_ttl_s: Optional[float] = None,
        latency: Optional[Any] = None,
    ) -> None:
        """``sas_ttl_s`` makes ``listSecrets`` SAS tokens expire after that many seconds instead of the
        hours asked for, to exercise credential refresh during long transfers and long-lived processes.
        ``latency`` (a :class:`.latency.Latency`) delays every control-plane answer."""
        if blob_persistence not in ("memory", "disk"):
            raise ValueError("blob_persistence must be 'memory' or 'disk'")
        self._port, self._blob_port = port, blob_port
        self._request_log_path = request_log
        self._page_size, self._in_memory = page_size, blob_persistence == "memory"
        self._workdir_arg, self._interceptor = workdir, interceptor
        self.sas_ttl_s = sas_ttl_s
        self._latency = latency
        self.subscription_id, self.resource_group = SUBSCRIPTION_ID, RESOURCE_GROUP
        self.workspaces = list(WORKSPACES)
        self.forbidden_workspace = FORBIDDEN_WORKSPACE
        self.token = make_token()
        self.account_keys = {
            f"devstoreaccount{i}": base64.b64encode(secrets.token_bytes(64)).decode() for i in (1, 2, 3, 4)
        }
        self._accounts = dict(zip([*WORKSPACES, FORBIDDEN_WORKSPACE], self.account_keys))
        self._containers = {ws: f"azureml-blobstore-{uuid.uuid4()}" for ws in self._accounts}
        self.state = ServiceState(SUBSCRIPTION_ID, RESOURCE_GROUP, page_size=page_size)
        self.registry_names = [REGISTRY]
        self.registry_state = RegistryState(
            SUBSCRIPTION_ID, RESOURCE_GROUP, TENANT_ID, page_size=lambda: self.state.page_size
        )
        self.registry_state.add_registry(REGISTRY, "devstoreaccount4")
        self.permissions = Permissions(
            SUBSCRIPTION_ID,
            RESOURCE_GROUP,
            lambda kind, name: name.lower() in WORKSPACES if kind == "workspaces"
            else self.registry_state.find(name) is not None,
        )
        self._log = RequestLog(request_log)
        self._workdir: Optional[Path] = None
        self._owns_workdir = False
        self._azurite: Optional[Azurite] = None
        self._server: Optional[ControlPlaneServer] = None
        self._certs: Optional[certs.CertFiles] = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalWorkspace:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        if self._workdir_arg:
            self._workdir = Path(self._workdir_arg)
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir, self._owns_workdir = Path(tempfile.mkdtemp(prefix="azureml-local-")), True
        self._certs = certs.generate(self._workdir / "tls")
        self._azurite = Azurite(
            port=self._blob_port,
            cert=self._certs.server_cert,
            key=self._certs.server_key,
            accounts=self.account_keys,
            workdir=self._workdir / "azurite",
            in_memory=self._in_memory,
        )
        self._azurite.start()
        self._create_containers()
        self._seed_state()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._certs.server_cert, self._certs.server_key)
        router = Router(
            self.state,
            self.token,
            set(WORKSPACES),
            lambda: cloud_metadata(self.resource_manager_url, self.storage_suffix),
            PRINCIPAL_ID,
            RegistryRouter(self.registry_state),
            self.permissions,
        )
        self._server = ControlPlaneServer(self._port, context, router, self._log, self._interceptor)
        self._server.latency = self._latency
        self._server.start()

    def stop(self) -> None:
        """Stop the server and Azurite and delete the temporary folder; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        self.stop_azurite()
        self._log.close()
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def stop_azurite(self) -> None:
        if self._azurite is not None:
            self._azurite.stop()

    def start_azurite(self) -> None:
        """(Re)start Azurite on the same port. In-memory blobs do not survive a restart; the datastore
        containers are created again (use ``blob_persistence="disk"`` to keep blobs)."""
        if self._azurite is None:
            raise RuntimeError("the workspace is not started")
        if not self._azurite.running():
            self._azurite.start()
            self._create_containers()

    # ------------------------------------------------------------------ set-up helpers
    def _create_containers(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        for ws, account in self._accounts.items():
            with contextlib.suppress(ResourceExistsError):
                self.blob_service(account).create_container(self._containers[ws])

    def _seed_state(self) -> None:
        for ws, account in self._accounts.items():
            self.state.add_workspace(ws)
            common = {
                "description": None,
                "tags": None,
                "properties": None,
                "datastoreType": "AzureBlob",
                "accountName": account,
                "containerName": self._containers[ws],
                "endpoint": self.storage_suffix,
                "protocol": "https",
                "subscriptionId": SUBSCRIPTION_ID,
                "resourceGroup": RESOURCE_GROUP,
            }
            self.state.add_datastore(
                ws,
                DEFAULT_DATASTORE,
                {
                    **common,
                    "isDefault": True,
                    "credentials": {"credentialsType": "AccountKey"},
                    "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
                },
            )
            self.state.add_datastore(
                ws,
                IDENTITY_DATASTORE,
                {
                    **common,
                    "isDefault": False,
                    "credentials": {"credentialsType": "None"},
                    "serviceDataAccessAuthIdentity": "None",
                },
            )
        self.state.secret_provider = self._sas_secret
        self.registry_state.storage = AzuriteRegistryStorage(
            self.account_keys, lambda: self.blob_port, self.blob_service
        )

    def _sas_secret(self, account: str, container: str, hours: int) -> dict[str, Any]:
        """An account SAS like the one the real ``listSecrets`` returns (recorded: ``srt=co``, rcuwdl)."""
        from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

        now = dt.datetime.now(dt.timezone.utc)
        sas = generate_account_sas(
            account,
            self.account_keys[account],
            ResourceTypes(container=True, object=True),
            AccountSasPermissions(
                read=True, create=True, update=True, write=True, delete=True, list=True, add=True
            ),
            expiry=now + (dt.timedelta(seconds=self.sas_ttl_s) if self.sas_ttl_s else dt.timedelta(hours=hours)),
            start=now - dt.timedelta(minutes=5),
        )
        return {"secretsType": "Sas", "sasToken": f"?{sas}"}

    # ------------------------------------------------------------------ what clients need
    @staticmethod
    def _started(part: Any) -> Any:
        if part is None:
            raise RuntimeError("the local workspace is not started")
        return part

    @property
    def port(self) -> int:
        return self._started(self._server).port

    @property
    def blob_port(self) -> int:
        return self._started(self._azurite).port

    @property
    def resource_manager_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def storage_suffix(self) -> str:
        """What the Azure ML SDK appends to ``<account>.blob.``: needs ``*.localhost`` to resolve."""
        return f"core.localhost:{self.blob_port}"

    @property
    def storage_account_url_template(self) -> str:
        return f"https://127.0.0.1:{self.blob_port}/{{account}}"

    @property
    def ca_bundle(self) -> str:
        return str(self._started(self._certs).bundle)

    @property
    def ca_cert(self) -> str:
        return str(self._started(self._certs).ca_cert)

    def registry_uri(self, workspace: str = WORKSPACES[0]) -> str:
        return (
            f"azureml-registry://subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/workspaces/{workspace}"
        )

    def azureml_registry_uri(self, name: str = REGISTRY) -> str:
        """The plugin's URI for an Azure ML registry (not a workspace)."""
        return (
            f"azureml-registry://subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/registries/{name}"
        )

    @property
    def registry_discovery_url(self) -> str:
        """Where ``/registrymanagement/v1.0/registries/{name}/discovery`` is served (the control plane)."""
        return self.resource_manager_url

    @property
    def env(self) -> dict[str, str]:
        """Exactly what ``mlflow-azureml-registry local`` prints. No secret is put in the registry URI."""
        values = (
            self.registry_uri(),
            self.resource_manager_url,
            self.token,
            self.storage_account_url_template,
            self.ca_bundle,
            self.ca_bundle,
            self.registry_discovery_url,
            self.azureml_registry_uri(),
        )
        return dict(zip(ENV_NAMES, values))

    def export_lines(self) -> list[str]:
        return [f"export {name}={shlex.quote(value)}" for name, value in self.env.items()]

    def datastore(self, workspace: str = WORKSPACES[0], name: str = DEFAULT_DATASTORE) -> dict[str, Any]:
        """The datastore's ``properties`` (accountName, containerName, ...), as GET returns them."""
        return self.state.get_datastore(workspace, name)["properties"]

    def blob_service(self, account: str = "devstoreaccount1") -> Any:
        """A key-authenticated ``BlobServiceClient`` on the path-style Azurite URL (tests, set-up)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(
            self.storage_account_url_template.format(account=account),
            credential={"account_name": account, "account_key": self.account_keys[account]},
            connection_verify=self.ca_bundle,
        )

    def credential(self) -> LocalTokenCredential:
        return LocalTokenCredential(self.token, self.resource_manager_url)

    def cloud_metadata(self) -> dict[str, str]:
        base = f"{self.resource_manager_url}/"
        return {
            "azure_portal": base,
            "resource_manager": base,
            "active_directory": base,
            "aml_resource_id": base,
            "storage_endpoint": self.storage_suffix,
            "registry_discovery_endpoint": base,
        }

    def ml_client_kwargs(self, workspace: str = WORKSPACES[0], *, registry: Optional[str] = None) -> dict[str, Any]:
        """Keyword arguments for ``azure.ai.ml.MLClient`` on a workspace, or with ``registry=`` on a registry.
        The SDK's own blob uploads go to ``https://<account>.blob.core.localhost:<port>``: resolve
        ``*.localhost`` to 127.0.0.1 first (``mlflow_azureml_registry.local.testing.resolve_localhost``)."""
        scope = {"registry_name": registry} if registry else {"workspace_name": workspace}
        return {
            "credential": self.credential(),
            "subscription_id": self.subscription_id,
            "resource_group_name": self.resource_group,
            **scope,
            "cloud": f"LocalAzureML{self.port}",
            "cloud_metadata": self.cloud_metadata(),
            "enable_telemetry": False,
            "show_progress": False,
        }

    # ------------------------------------------------------------------ hooks and request log
    def set_latency(self, latency: Optional[Any]) -> None:
        """Delay every control-plane answer by a :class:`.latency.Latency` (None: answer at once)."""
        self._latency = latency
        if self._server is not None:
            self._server.latency = latency

    def set_interceptor(self, interceptor: Optional[Interceptor]) -> None:
        """Install (or, with None, remove) the fault-injection / observation hook of the server."""
        from .server import PassThrough

        self._interceptor = interceptor
        if self._server is not None:
            self._server.interceptor = interceptor or PassThrough()

    def refusing_storage(self) -> RefusingStorage:
        """A storage endpoint whose firewall refuses this client (403 ``AuthorizationFailure`` to every request;
        :mod:`.firewall`), with this workspace's certificate; a context manager. Its ``account_url_template`` as
        ``MLFLOW_AZUREML_STORAGE_ACCOUNT_URL`` puts the datastores behind it."""
        files = self._started(self._certs)
        return RefusingStorage(files.server_cert, files.server_key)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._log.records()

    def registry_datastore(self, name: str = REGISTRY) -> dict[str, str]:
        """The registry's storage account (Azurite), for tests."""
        return {"accountName": self.registry_state.registry(name).account}

    def clear_requests(self) -> None:
        self._log.clear()

    @property
    def azurite_running(self) -> bool:
        return self._azurite is not None and self._azurite.running()

    @property
    def azurite_pid(self) -> Optional[int]:
        process = self._azurite.process if self._azurite is not None else None
        return process.pid if process is not None else None

    @property
    def workdir(self) -> Optional[str]:
        return str(self._workdir) if self._workdir is not None else None
