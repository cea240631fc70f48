"""Fixtures for the plugin's tests: one local workspace per session, MLflow pointed at it.

No test sends traffic off loopback: connects elsewhere raise, and azure-identity's managed-identity
endpoints point at a closed loopback port before anything imports it.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

for _name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
    os.environ.setdefault(_name, "http://127.0.0.1:9/token")
os.environ.setdefault("IDENTITY_HEADER", "tests")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

from mlflow_azureml_registry.local.testing import loopback_only  # noqa: E402


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    with loopback_only() as refused:
        yield
    assert not refused, f"off-loopback connections attempted: {refused}"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    """The local workspace, with its printed environment applied to this process (as a user's shell would)."""
    import mlflow

    from mlflow_azureml_registry import session
    from mlflow_azureml_registry.local import LocalWorkspace

    with loopback_only(), LocalWorkspace() as ws:
        saved = {k: os.environ.get(k) for k in ws.env}
        os.environ.update(ws.env)
        session.reset()
        tracking = tmp_path_factory.mktemp("tracking")
        mlflow.set_tracking_uri(f"sqlite:///{tracking}/mlflow.db")
        mlflow.set_registry_uri(ws.registry_uri())
        try:
            yield ws
        finally:
            session.reset()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture
def client(workspace):
    import mlflow

    mlflow.set_registry_uri(workspace.registry_uri())
    return mlflow.MlflowClient()


_counter = itertools.count()


@pytest.fixture
def model_name() -> str:
    """A model name unique to the test (the workspace is shared by the session)."""
    return f"m{next(_counter)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def sklearn_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow sklearn model folder on disk (saved once per session)."""
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("models") / "iris_model"
    mlflow.sklearn.save_model(LogisticRegression(max_iter=300).fit(X, y), path, input_example=X.head(2))
    return path


@pytest.fixture(scope="session")
def iris():
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    return X


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
