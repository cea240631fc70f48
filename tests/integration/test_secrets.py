"""What users and support see never holds a secret, and a failed call names the Azure request id.

A whole workflow runs through public MLflow APIs with every logger at DEBUG; its log lines, error
texts, tracebacks, reprs and registry metadata are scanned for the bearer token, the storage account
keys and the signature of every SAS the local workspace's ``listSecrets`` handed out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import traceback
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, quote, quote_plus, unquote

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import credentials, session, settings
from mlflow_azureml_registry.local.handlers import Response

pytestmark = pytest.mark.emulator_only(
    "scans everything shown for the emulator's own token and account keys, and injects faults"
)

NAMESPACES = ("azure", "urllib3", "mlflow", "mlflow_azureml_registry", "msal")
REQUEST_ID = re.compile(r"x-ms-request-id: [0-9A-Za-z-]{8,}")


# ----------------------------------------------------------------------------------------- helpers
class _Capture(logging.Handler):
    """Every record once (it may reach us through several loggers), formatted when emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[tuple[str, str]] = []
        self._seen: set[int] = set()
        self._records: list[logging.LogRecord] = []  # keeps ids unique while we compare them

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) in self._seen:
            return
        self._seen.add(id(record))
        self._records.append(record)
        try:
            text = self.format(record)
        except Exception as exc:  # a bad format string must not hide the record
            text = f"{record.msg!r} {record.args!r} ({exc})"
        self.lines.append((record.name, text))


@contextlib.contextmanager
def debug_logging() -> Iterator[_Capture]:
    """Root logger and the Azure, urllib3, MLflow, MSAL and plugin loggers at DEBUG; restored afterwards."""
    capture = _Capture()
    roots = [logging.getLogger()] + [logging.getLogger(n) for n in NAMESPACES]
    children = [
        lg
        for name, lg in list(logging.root.manager.loggerDict.items())
        if isinstance(lg, logging.Logger) and name.split(".")[0] in NAMESPACES
    ]
    saved = {lg: (lg.level, lg.disabled) for lg in roots + children}
    for lg in roots + children:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    for lg in roots:
        lg.addHandler(capture)
    try:
        yield capture
    finally:
        for lg in roots:
            lg.removeHandler(capture)
        for lg, (level, disabled) in saved.items():
            lg.setLevel(level)
            lg.disabled = disabled


@dataclass
class Seen:
    """Texts a user, a log collector or a support ticket could hold, each with where it came from."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, obj: Any) -> None:
        self.texts.append((where, obj if isinstance(obj, str) else str(obj)))
        if not isinstance(obj, str):
            self.texts.append((f"{where} (repr)", repr(obj)))

    def error(self, where: str, exc: BaseException) -> None:
        """Message, repr and the printed traceback, for the exception and everything chained to it."""
        self.add(f"{where} traceback", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        chained: Optional[BaseException] = exc
        depth = 0
        while chained is not None and depth < 10:
            self.add(f"{where} {type(chained).__name__}", chained)
            if isinstance(chained, MlflowException):
                self.add(f"{where} json", chained.serialize_as_json())
            chained, depth = chained.__cause__ or chained.__context__, depth + 1

    def fails(self, where: str, call: Callable[[], Any]) -> MlflowException:
        with pytest.raises(MlflowException) as info:
            call()
        self.error(where, info.value)
        return info.value


def secret_forms(value: str) -> set[str]:
    """The value as it may appear: raw, URL-decoded, URL-encoded (both flavours)."""
    decoded = unquote(value)
    return {f for f in (value, decoded, quote(decoded, safe=""), quote_plus(decoded)) if len(f) >= 8}


def find_leaks(texts: list[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    """Where each secret occurs, described without the secret itself (the report may end up in CI logs)."""
    leaks = []
    for label, value in secrets.items():
        for form in secret_forms(value):
            for where, text in texts:
                at = text.find(form)
                if at >= 0:
                    before = text[max(0, at - 60) : at].replace("\n", " ")
                    after = text[at + len(form) : at + len(form) + 40].replace("\n", " ")
                    leaks.append(f"{label} in {where}: ...{before}<SECRET>{after}...")
    return leaks


def _distinct(leaks: list[str]) -> list[str]:
    """One line per place (a leak repeated in every urllib3 request line is one finding)."""
    out: dict[str, str] = {}
    for leak in leaks:
        out.setdefault(leak.split(": ...", 1)[0], leak)
    return list(out.values())


def sas_signatures(sas_tokens: list[str]) -> dict[str, str]:
    found = {}
    for i, token in enumerate(sas_tokens):
        raw = re.search(r"(?:^|[?&])sig=([^&]+)", token)
        assert raw, "a SAS without a signature"
        found[f"SAS #{i} sig"] = raw.group(1)
        found[f"SAS #{i} sig (decoded)"] = parse_qs(token.lstrip("?"))["sig"][0]
    return found


class _Handed(list):
    """The SAS tokens handed out; its repr hides them (pytest prints fixture values on failure)."""

    def __repr__(self) -> str:
        return f"<{len(self)} SAS token(s)>"


@pytest.fixture
def sas_handed_out(workspace) -> Iterator[list[str]]:
    """Every SAS ``listSecrets`` answers with during the test (fresh gateways, so each is asked anew)."""
    handed = _Handed()
    original = workspace.state.secret_provider

    def recording(account: str, container: str, hours: int) -> dict[str, Any]:
        answer = original(account, container, hours)
        handed.append(answer["sasToken"])
        return answer

    workspace.state.secret_provider = recording
    session.reset()
    try:
        yield handed
    finally:
        workspace.state.secret_provider = original
        session.reset()


def _blob_container(workspace, ws: str = "local-ws"):
    datastore = workspace.datastore(ws)
    return workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])


def _state_dump(workspace) -> list[tuple[str, str]]:
    """Every container, version and datastore the emulated service holds, as its REST API returns them."""
    state = workspace.state
    out = []
    for ws in list(state.workspaces.values()):
        for name in list(ws.datastores):
            out.append((f"state datastore {ws.name}/{name}", json.dumps(state.get_datastore(ws.name, name))))
        for name, container in list(ws.models.items()):
            out.append((f"state model {ws.name}/{name}", json.dumps(state.get_model(ws.name, name))))
            for version in list(container.versions):
                resource = state.get_version(ws.name, name, version)
                out.append((f"state version {ws.name}/{name}/{version}", json.dumps(resource)))
    return out


# ----------------------------------------------------------------------------------------- the scan
def test_no_secret_in_logs_errors_reprs_or_metadata(
    workspace, model_name, sklearn_model_dir, iris, sas_handed_out, tmp_path, capfd
):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracking._model_registry.utils import _get_store

    folder = tmp_path / "model"
    shutil.copytree(sklearn_model_dir, folder)
    (folder / "nonce.txt").write_text(uuid.uuid4().hex)  # a fresh upload: blob PUTs are part of the scan
    seen = Seen()
    client = mlflow.MlflowClient()
    with debug_logging() as capture, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # -- the happy path
        mv = mlflow.register_model(str(folder), model_name, tags={"team": "fraud"})
        client.set_registered_model_tag(model_name, "owner", "risk")
        client.update_registered_model(model_name, description="scored nightly")
        client.set_model_version_tag(model_name, mv.version, "validated", "yes")
        client.update_model_version(model_name, mv.version, description="first")
        client.set_registered_model_alias(model_name, "champion", mv.version)
        client.transition_model_version_stage(model_name, mv.version, "Staging")
        mv2 = client.create_model_version(model_name, f"models:/{model_name}/{mv.version}")  # nothing copied
        seen.add("registered model", client.get_registered_model(model_name))
        for got in (
            client.get_model_version(model_name, mv.version),
            client.get_model_version_by_alias(model_name, "champion"),
            *client.get_latest_versions(model_name),
            *client.search_model_versions(f"name = '{model_name}'"),
            mv2,
        ):
            seen.add(f"version {got.version}", got)
            seen.add(f"version {got.version} source", got.source)
            seen.add(f"version {got.version} tags", got.tags)
        seen.add("search", client.search_registered_models(f"name = '{model_name}'"))
        download_uri = client.get_model_version_download_uri(model_name, mv.version)
        seen.add("download uri", download_uri)
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
        assert len(loaded.predict(iris.head(3))) == 3
        out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}", dst_path=str(tmp_path / "dl"))
        assert (Path(out) / "nonce.txt").read_text() == (folder / "nonce.txt").read_text()
        repo = get_artifact_repository(download_uri)
        seen.add("artifact list", repo.list_artifacts())
        # -- failures
        seen.fails("missing version", lambda: client.get_model_version(model_name, "999"))
        seen.fails("missing model", lambda: client.get_registered_model(f"{model_name}-missing"))
        forbidden = mlflow.MlflowClient(registry_uri=workspace.registry_uri(workspace.forbidden_workspace))
        seen.fails("forbidden workspace", lambda: forbidden.get_registered_model(model_name))
        seen.fails("missing artifact", lambda: repo.download_artifacts("no-such-file", str(tmp_path)))
        prefix = workspace.state.get_version("local-ws", model_name, str(mv.version))["properties"]["modelUri"]
        _blob_container(workspace).upload_blob(
            f"{prefix.split('/paths/', 1)[1]}/nonce.txt", b"tampered", overwrite=True
        )
        error = seen.fails(
            "integrity",
            lambda: mlflow.artifacts.download_artifacts(f"models:/{model_name}/1", dst_path=str(tmp_path / "bad")),
        )
        assert error.error_code == "INVALID_STATE"
        with pytest.MonkeyPatch.context() as env:  # storage unreachable: connection errors name the URL tried
            env.setenv(settings.STORAGE_ACCOUNT_URL, "https://127.0.0.1:9/{account}")
            env.setenv(settings.RETRY_TOTAL, "0")
            session.reset()
            seen.fails("storage unreachable", repo.list_artifacts)
            seen.fails("storage unreachable download", lambda: repo.download_artifacts("MLmodel", str(tmp_path)))
        session.reset()
        seen.add("artifact list again", repo.list_artifacts())  # gateways as the workflow had them, for the reprs
        # -- what the process holds
        store = _get_store()
        seen.add("registry store", store)
        seen.add("artifact repository", repo)
        seen.add("artifact repository uri", repo.artifact_uri)
        for gateway in list(session._gateways.values()):
            seen.add("gateway", gateway)
            seen.add("gateway arm", gateway._arm)
            seen.add("gateway credential", gateway._credential)
            if gateway.workspace.workspace_name == workspace.forbidden_workspace:
                continue
            blob_folder = gateway.blob_folder("workspaceblobstore")  # the client the workflow used (cached)
            seen.add("blob folder", blob_folder)
            seen.add("blob folder url", blob_folder.url)
            seen.add("blob client", blob_folder._container)
            seen.add("blob client credential", blob_folder._container.credential)
        seen.add("credential", credentials.resolve(settings.resource_manager_url()))
    seen.texts.extend((f"log {name}", line) for name, line in capture.lines)
    seen.texts.extend(("warning", str(w.message)) for w in caught)
    seen.texts.extend(_state_dump(workspace))
    printed = capfd.readouterr()
    seen.texts.extend([("stdout", printed.out), ("stderr", printed.err)])

    # The scan means something: secrets were in play, and the HTTP layers logged at DEBUG.
    assert sas_handed_out, "listSecrets was never called"
    names = {name for name, _ in capture.lines}
    assert {"urllib3.connectionpool", "azure.core.pipeline.policies.http_logging_policy"} <= names, names
    secrets = {"bearer token": workspace.token, "bearer token signature": workspace.token.rsplit(".", 1)[1]}
    secrets.update({f"account key {account}": key for account, key in workspace.account_keys.items()})
    secrets.update(sas_signatures(sas_handed_out))
    assert find_leaks([("canary", f"x {secrets['bearer token']} y")], secrets), "the scanner finds nothing"
    leaks = find_leaks(seen.texts, secrets)
    assert not leaks, f"{len(leaks)} leak(s) in {len(seen.texts)} texts:\n" + "\n".join(_distinct(leaks)[:20])


def test_sas_signatures_are_masked_in_urllib3_lines_and_error_messages(caplog):
    """Independent of MLflow's own urllib3 filter (MLflow 3.x has one, 2.x does not)."""
    from mlflow_azureml_registry.azure.errors import AzureMLError
    from mlflow_azureml_registry.errors import to_mlflow

    sig = quote("c2VjcmV0LXNpZ25hdHVyZS1mb3ItdGVzdHMtb25seQ+/=", safe="")
    credentials.keep_secrets_out_of_logs()
    credentials.keep_secrets_out_of_logs()  # idempotent
    logger = logging.getLogger("urllib3.connectionpool")
    assert sum(isinstance(f, credentials.RedactingFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        # urllib3's own request line (connectionpool._make_request)
        url = f"/c/b?sv=1&sig={sig}"
        logger.debug('%s://%s:%s "%s %s %s" %s %s', "https", "a", 443, "GET", url, "HTTP/1.1", 200, 5)
    assert sig not in caplog.text and "&sig=<redacted> HTTP/1.1" in caplog.text
    assert credentials.redact("AccountName=a;AccountKey=a2V5+/==;EndpointSuffix=x") == (
        "AccountName=a;AccountKey=<redacted>;EndpointSuffix=x"
    )
    message = to_mlflow(AzureMLError(f"GET https://a.blob/c?sv=1&sig={sig} failed", request_id="r-1")).message
    assert sig not in message and "sig=<redacted>" in message and "x-ms-request-id: r-1" in message


# ----------------------------------------------------------------------------------------- request ids
def _assert_request_id(exc: MlflowException, code: str) -> None:
    assert exc.error_code == code, exc.message
    assert REQUEST_ID.search(exc.message), f"no x-ms-request-id in: {exc.message}"


@pytest.fixture
def intercept(workspace):
    class Script:
        def __init__(self, before: Callable[[Any], Any]) -> None:
            self.before_fn = before

        def before(self, request: Any) -> Any:
            return self.before_fn(request)

        def after(self, request: Any, response: Any) -> bool:
            return True

    yield lambda before: workspace.set_interceptor(Script(before))
    workspace.set_interceptor(None)


@pytest.mark.parametrize(
    "case, code",
    [
        ("missing version", "RESOURCE_DOES_NOT_EXIST"),
        ("missing model", "RESOURCE_DOES_NOT_EXIST"),
        ("forbidden workspace", "PERMISSION_DENIED"),
        ("bad request", "INVALID_PARAMETER_VALUE"),
        ("wrong token", "UNAUTHENTICATED"),
    ],
)
def test_control_plane_errors_carry_the_request_id(workspace, client, model_name, intercept, monkeypatch, case, code):
    client.create_registered_model(model_name)
    calls: dict[str, Callable[[], Any]] = {
        "missing version": lambda: client.get_model_version(model_name, "999"),
        "missing model": lambda: client.get_registered_model(f"{model_name}-x"),
        "forbidden workspace": lambda: mlflow.MlflowClient(
            registry_uri=workspace.registry_uri(workspace.forbidden_workspace)
        ).get_registered_model(model_name),
        "bad request": lambda: client.update_registered_model(model_name, "d"),
        "wrong token": lambda: client.get_registered_model(model_name),
    }
    if case == "bad request":
        body = {"error": {"code": "UserError", "message": "Invalid request body.", "details": []}}
        intercept(lambda r: Response(400, body) if r.path.endswith(f"/models/{model_name}") else None)
    if case == "wrong token":
        monkeypatch.setenv(settings.LOCAL_TOKEN, "not-the-token")
        session.reset()
    try:
        with pytest.raises(MlflowException) as info:
            calls[case]()
    finally:
        monkeypatch.undo()
        session.reset()
    _assert_request_id(info.value, code)


def test_storage_errors_carry_the_request_id(workspace, model_name):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    # A datastore whose container does not exist: Azurite answers 404 ContainerNotFound.
    gone = f"gone{uuid.uuid4().hex[:8]}"
    workspace.state.add_datastore("local-ws", gone, dict(workspace.datastore("local-ws"), containerName=gone))
    uri = f"{workspace.registry_uri()}/datastores/{gone}/paths/LocalUpload/x/model"
    _assert_request_id(
        pytest.raises(MlflowException, get_artifact_repository(uri).list_artifacts).value, "RESOURCE_DOES_NOT_EXIST"
    )

    # A SAS whose signature is wrong: Azurite answers 403 AuthenticationFailed.
    original = workspace.state.secret_provider

    def forged(account: str, container: str, hours: int) -> dict[str, Any]:
        sas = original(account, container, hours)["sasToken"]
        return {"secretsType": "Sas", "sasToken": re.sub(r"sig=[^&]+", "sig=" + quote("A" * 43 + "="), sas)}

    workspace.state.secret_provider = forged
    session.reset()
    try:
        uri = f"{workspace.registry_uri()}/datastores/workspaceblobstore/paths/LocalUpload/{'0' * 64}/model"
        error = pytest.raises(MlflowException, get_artifact_repository(uri).list_artifacts).value
    finally:
        workspace.state.secret_provider = original
        session.reset()
    _assert_request_id(error, "PERMISSION_DENIED")


# ----------------------------------------------------------------------------------------- settings
def test_http_settings_come_from_the_environment_and_reach_both_pipelines(workspace, monkeypatch):
    from mlflow_azureml_registry.uri import parse_registry_uri

    monkeypatch.setenv(settings.HTTP_TIMEOUT, "7")
    monkeypatch.setenv(settings.CONNECT_TIMEOUT, "3")
    monkeypatch.setenv(settings.RETRY_TOTAL, "2")
    session.reset()
    try:
        gateway = session.gateway(parse_registry_uri(workspace.registry_uri()))
        assert gateway._arm._http == settings.HttpSettings(read_timeout=7.0, connect_timeout=3.0, retry_total=2)
        blobs = gateway.blob_folder("workspaceblobstore")._container
        assert blobs._config.retry_policy.total_retries == 2
        connection = blobs._pipeline._transport.connection_config
        assert (connection.timeout, connection.read_timeout) == (3.0, 7.0)
    finally:
        monkeypatch.undo()
        session.reset()
    monkeypatch.setenv(settings.RETRY_TOTAL, "many")
    with pytest.raises(ValueError, match=settings.RETRY_TOTAL):
        settings.http_settings()


def test_every_environment_variable_is_documented_in_the_readme(monkeypatch):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    read = {v for k, v in vars(settings).items() if k.isupper() and isinstance(v, str) and v.startswith("MLFLOW_")}
    assert read <= documented, f"not in README's table: {sorted(read - documented)}"
    defaults = {name: re.search(rf"^\| `{name}` \| ([^|]+) \|", table, flags=re.MULTILINE)[1] for name in documented}
    for name in (settings.HTTP_TIMEOUT, settings.CONNECT_TIMEOUT, settings.RETRY_TOTAL):
        monkeypatch.delenv(name, raising=False)
    http = settings.http_settings()
    assert defaults[settings.HTTP_TIMEOUT].strip() == f"`{http.read_timeout:g}`"
    assert defaults[settings.CONNECT_TIMEOUT].strip() == f"`{http.connect_timeout:g}`"
    assert defaults[settings.RETRY_TOTAL].strip() == f"`{http.retry_total}`"
