"""Datastore SAS tokens that expire after seconds (issue #7): transfers and long-lived processes go on.

The local workspace's ``sas_ttl_s`` makes ``listSecrets`` hand out SAS tokens that Azurite refuses a
few seconds later; the plugin renews them before expiry (mlflow_azureml_registry/azure/sas.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import files_of

pytestmark = pytest.mark.emulator_only("shortens the emulator's SAS lifetime and reads its request log")


@pytest.fixture
def short_sas(workspace, monkeypatch) -> Iterator[float]:
    """SAS tokens live 3 s (``se=`` has whole seconds: 2-3 s in fact); transfers run one request at a time,
    and each file's progress report waits 20 ms, so a 200-file transfer outlasts a token on any machine."""
    from mlflow_azureml_registry import artifacts, progress, registration, session

    ttl = 3.0

    class SlowProgress(progress.TransferProgress):
        def file_done(self) -> None:
            time.sleep(0.02)

    monkeypatch.setattr(registration, "TransferProgress", SlowProgress)
    monkeypatch.setattr(artifacts, "TransferProgress", SlowProgress)
    monkeypatch.setenv("MLFLOW_AZUREML_TRANSFER_CONCURRENCY", "1")
    saved, workspace.sas_ttl_s = workspace.sas_ttl_s, ttl
    session.reset()  # forget the hour-long SAS this process already holds
    try:
        yield ttl
    finally:
        workspace.sas_ttl_s = saved
        session.reset()


def _list_secrets_calls(workspace) -> int:
    return sum(1 for r in workspace.requests if r["path"].endswith("/listSecrets"))


def _many_files(root: Path, count: int) -> Path:
    folder = root / "many"
    folder.mkdir()
    for i in range(count):
        (folder / f"part-{i:04d}.txt").write_text(f"{i}\n" * 50)
    return folder


def test_azurite_refuses_an_expired_sas(workspace, monkeypatch):
    """The control: without renewal, a SAS from listSecrets stops working after its lifetime.

    Each check is one request (the first page of a listing): listing the whole container one blob per page,
    as this test once did, sends a request per blob the session has stored (thousands by the time it runs in
    the full suite, each a full scan on Azurite), which outlived the SAS before the check ended."""
    from azure.core.credentials import AzureSasCredential
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    from mlflow_azureml_registry.azure.sas import sas_expiry

    monkeypatch.setattr(workspace, "sas_ttl_s", 8.0)
    props = workspace.datastore()
    issued = time.time()
    sas = workspace.state.secret_provider(props["accountName"], props["containerName"], 1)["sasToken"]
    responses = []
    container = ContainerClient(
        workspace.storage_account_url_template.format(account=props["accountName"]),
        props["containerName"],
        credential=AzureSasCredential(sas.lstrip("?")),
        connection_verify=workspace.ca_bundle,
        raw_response_hook=lambda response: responses.append(response.http_response.status_code),
    )

    def first_page() -> list:
        return list(next(container.list_blobs(results_per_page=1).by_page()))

    try:
        first_page()  # a fresh SAS works
    except HttpResponseError as exc:
        pytest.fail(f"a fresh SAS was refused: {exc.status_code} {exc.error_code} after {time.time() - issued:.2f} s")
    assert responses == [200]
    expiry = sas_expiry(sas)
    assert expiry is not None
    time.sleep(max(0.0, expiry - time.time()) + 1.5)
    with pytest.raises(HttpResponseError) as refused:
        first_page()
    assert refused.value.status_code == 403
    assert responses == [200, 403]  # one request, refused: no retry of a 403


def test_transfers_longer_than_the_sas_lifetime(workspace, client, model_name, tmp_path, short_sas):
    import mlflow

    folder = _many_files(tmp_path, 200)
    client.create_registered_model(model_name)
    before = _list_secrets_calls(workspace)
    started = time.monotonic()
    mv = client.create_model_version(model_name, str(folder))
    upload_s = time.monotonic() - started
    renewed_during_upload = _list_secrets_calls(workspace) - before
    started = time.monotonic()
    got = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}", dst_path=str(tmp_path / "dl"))
    download_s = time.monotonic() - started
    assert files_of(Path(got)) == files_of(folder)
    total = _list_secrets_calls(workspace) - before
    print(f"upload {upload_s:.1f} s, download {download_s:.1f} s, SAS lifetime {short_sas} s, {total} SAS fetched")
    # 200 files x 20 ms: each transfer outlives a token, so each needed at least one renewal.
    assert upload_s > short_sas and download_s > short_sas
    assert renewed_during_upload >= 1 and total - renewed_during_upload >= 1


def test_a_long_lived_process_keeps_working_after_its_sas_expired(workspace, client, model_name, tmp_path, short_sas):
    import mlflow

    folder = _many_files(tmp_path, 3)
    client.create_registered_model(model_name)
    client.create_model_version(model_name, str(folder))
    time.sleep(short_sas + 1.5)  # the process's SAS is now expired
    (folder / "more.txt").write_text("new files, so a new upload")
    mv = client.create_model_version(model_name, str(folder))
    time.sleep(short_sas + 1.5)
    got = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{mv.version}", dst_path=str(tmp_path / "dl"))
    assert files_of(Path(got)) == files_of(folder)
