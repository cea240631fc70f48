"""Behind an HTTPS proxy: control-plane and blob requests go through ``HTTPS_PROXY``; ``NO_PROXY`` exempts hosts.

The blob client reads the proxy settings once, when it is built, instead of on every request (see
``azure.gateway.environment_http_settings``); these tests hold it to requests' own behaviour.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import pytest

from mlflow_azureml_registry import session

from ..conftest import files_of
from ..fakes.proxy import TunnelProxy

pytestmark = pytest.mark.emulator_only("sends the traffic through a loopback proxy fake to the emulator's endpoints")

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                    "NO_PROXY", "no_proxy")


@pytest.fixture
def proxy(workspace, monkeypatch):
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with TunnelProxy() as tunnel:
        monkeypatch.setenv("HTTPS_PROXY", tunnel.url)
        session.reset()  # clients read the environment when they are built
        yield tunnel
    session.reset()


def _netloc(url: str) -> str:
    return urlsplit(url).netloc


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for i in range(5):
        (folder / f"part-{i}.txt").write_text(f"part {i} of {tmp_path.name}")
    return folder


def test_every_request_goes_through_the_proxy(workspace, client, model_name, proxy, tmp_path):
    folder = _folder(tmp_path)
    version = mlflow.register_model(str(folder), model_name).version
    out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", dst_path=str(tmp_path / "out"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)

    storage = _netloc(workspace.storage_account_url_template.format(account="x"))
    assert set(proxy.tunnels) == {_netloc(workspace.resource_manager_url), storage}


def test_no_proxy_exempts_hosts(workspace, client, model_name, proxy, tmp_path, monkeypatch):
    # Both services listen on 127.0.0.1; requests matches NO_PROXY entries to an IP address without its port.
    monkeypatch.setenv("NO_PROXY", "example.invalid,127.0.0.1")
    session.reset()
    version = mlflow.register_model(str(_folder(tmp_path)), model_name).version
    mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", dst_path=str(tmp_path / "out"))
    assert proxy.tunnels == []


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.example:3128"},
        {"https_proxy": "http://proxy.example:3128", "no_proxy": ".blob.core.windows.net"},
        {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "acct.blob.core.windows.net:443"},
        {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "*"},
        {"ALL_PROXY": "socks5://proxy.example:1080"},
        {"HTTP_PROXY": "http://proxy.example:3128"},  # not for https URLs
        {"REQUESTS_CA_BUNDLE": "/etc/corp-ca.pem"},
        {"CURL_CA_BUNDLE": "/etc/curl-ca.pem"},
        {"REQUESTS_CA_BUNDLE": "/etc/corp-ca.pem", "CURL_CA_BUNDLE": "/etc/curl-ca.pem"},
    ],
)
@pytest.mark.parametrize("url", ["https://acct.blob.core.windows.net", "https://other.blob.core.chinacloudapi.cn"])
def test_the_blob_client_settings_are_what_requests_would_use(monkeypatch, env, url):
    """Read once instead of per request, the proxies and CA bundle must still be requests' own choice."""
    import requests

    from mlflow_azureml_registry.azure.environment import environment_http_settings

    for name in (*_PROXY_VARIABLES, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    expected = requests.Session().merge_environment_settings(url, {}, False, True, None)
    settings = environment_http_settings(url)
    assert settings["use_env_settings"] is False
    assert settings["connection_verify"] == expected["verify"]
    wanted = {k: v for k, v in expected["proxies"].items() if k != "no"}
    got = {k: v for k, v in (settings["proxies"] or {}).items() if k != "no"}
    assert got == wanted


def test_settings_are_read_safely_while_another_thread_changes_the_environment():
    """MLflow 3's telemetry thread sets and unsets a variable; walking os.environ meanwhile raised KeyError in
    requests' per-request proxy lookup (seen failing a registration). The settings are now read once, and that
    read retries a walk that raced."""
    import os
    import threading

    from mlflow_azureml_registry.azure.environment import environment_http_settings

    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            for i in range(50):
                os.environ[f"_RACE_TEST_{i}"] = "x"
            for i in range(50):
                os.environ.pop(f"_RACE_TEST_{i}", None)

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        for _ in range(2000):
            assert environment_http_settings("https://acct.blob.core.windows.net")["use_env_settings"] is False
    finally:
        stop.set()
        thread.join()
