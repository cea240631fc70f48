"""The plugin's environment variables: a value it cannot use is MLflow's INVALID_PARAMETER_VALUE, naming the variable,
at the first registry call that needs it (never a bare ValueError traceback, never a request sent)."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import session, settings

URI = "azureml-registry://subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg/workspaces/ws"

BAD = [
    (settings.HTTP_TIMEOUT, "soon", "must be a number"),
    (settings.CONNECT_TIMEOUT, "-1", "must not be negative"),
    (settings.RETRY_TOTAL, "many", "must be a number"),
    (settings.UPLOAD_CONCURRENCY, "x", "must be a number"),
    (settings.STORAGE_ACCOUNT_URL, "https://127.0.0.1:9/devstoreaccount1", "holding {account}"),
]


@pytest.mark.parametrize(("name", "value", "words"), BAD)
def test_a_setting_the_plugin_cannot_use_is_an_mlflow_error_naming_it(monkeypatch, name, value, words):
    monkeypatch.setenv(settings.RESOURCE_MANAGER_URL, "https://127.0.0.1:9")  # closed: nothing may be sent anyway
    monkeypatch.setenv(settings.LOCAL_TOKEN, "t")
    monkeypatch.setenv(name, value)
    session.reset()
    try:
        with pytest.raises(MlflowException) as refused:
            MlflowClient(registry_uri=URI).get_registered_model("m")
    finally:
        session.reset()
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert name in refused.value.message and words in refused.value.message
    assert isinstance(refused.value, ValueError)  # what callers caught before it was MLflow's


def test_a_template_with_account_is_taken(monkeypatch):
    monkeypatch.setenv(settings.STORAGE_ACCOUNT_URL, "https://127.0.0.1:10000/{account}")
    assert settings.storage_account_url_template() == "https://127.0.0.1:10000/{account}"
    monkeypatch.delenv(settings.STORAGE_ACCOUNT_URL)
    assert settings.storage_account_url_template() is None
