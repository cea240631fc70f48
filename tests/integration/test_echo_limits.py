"""A huge input is never echoed in full (issue #15): a 1 MB page token gave a 1 MB error message, a 1 MB
filter or registry URI about 2 MB. Every message quotes at most a short prefix and says how long it was."""

from __future__ import annotations

import contextlib

import pytest
from mlflow.exceptions import MlflowException

HUGE = "x" * 1_000_000
LIMIT = 2_000  # characters: MLflow's words, our hint, a quoted prefix


def _calls(client, name):
    return {
        "page-token": lambda: client.search_registered_models(page_token=HUGE),
        "version-page-token": lambda: client.search_model_versions(page_token=HUGE),
        "page-token-base64": lambda: client.search_registered_models(page_token="e" + "A" * 999_999),
        "filter": lambda: client.search_registered_models(f"name = '{HUGE}' AND foo = 'x'"),
        "version-filter": lambda: client.search_model_versions(f"foo = '{HUGE}'"),
        "filter-garbage": lambda: client.search_model_versions(HUGE),
        "order-by": lambda: client.search_registered_models(order_by=[HUGE]),
        "version-order-by": lambda: client.search_model_versions(order_by=[HUGE]),
        "name": lambda: client.get_registered_model(HUGE),
        "version": lambda: client.get_model_version(name, HUGE),
        "alias": lambda: client.get_model_version_by_alias(name, HUGE),
        "stage": lambda: client.transition_model_version_stage(name, "1", HUGE),
        "tag-key": lambda: client.set_registered_model_tag(name, HUGE, "v"),
        "source": lambda: client.create_model_version(name, "runs:/" + HUGE),
        "source-path": lambda: client.create_model_version(name, "/nonexistent/" + HUGE[:3000]),
        "source-scheme": lambda: client.create_model_version(name, "foo://" + HUGE),
    }


@pytest.fixture(scope="module")
def model(workspace):
    import mlflow

    client = mlflow.MlflowClient()
    name = "echo-limits"
    with contextlib.suppress(MlflowException):  # made by an earlier run of this module
        client.create_registered_model(name)
    return client, name


@pytest.mark.parametrize("what", list(_calls(None, None)))
def test_a_huge_input_is_quoted_short(model, what):
    client, name = model
    with pytest.raises(MlflowException) as info:
        _calls(client, name)[what]()
    assert info.value.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert len(info.value.message) < LIMIT, (len(info.value.message), info.value.message[:300])
