"""Fixtures for the plugin's tests: one local workspace per session, MLflow pointed at it.

No test sends traffic off loopback: connects elsewhere raise, and azure-identity's managed-identity
endpoints point at a closed loopback port before anything imports it.

Live mode (``tests/live/mode.py``): with ``MLFLOW_AZUREML_LIVE_REGISTRY_URI`` set, ``workspace`` is that real
workspace or registry instead (a ``LiveWorkspace``), the loopback guard is off, model names carry the run's prefix,
``@pytest.mark.emulator_only("reason")`` tests are skipped, ``@pytest.mark.live_only("reason")`` tests run, and
what the run created is cleaned up at the end. ``--record-traffic PATH`` records the HTTP traffic azure-core sends
in this process, secrets scrubbed (``tests/live/traffic.py``), in either mode.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.live import mode as live

LIVE = live.is_live()
if not LIVE:  # live, the real credential chain must see the machine's own identity settings
    for _name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
        os.environ.setdefault(_name, "http://127.0.0.1:9/token")
    os.environ.setdefault("IDENTITY_HEADER", "tests")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

from mlflow_azureml_registry.local.testing import loopback_only  # noqa: E402

_recorder: Optional[Any] = None
_cleanup_summaries: list[Any] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlflow-azureml-registry")
    group.addoption("--record-traffic", metavar="PATH", default=None,
                    help="write the HTTP traffic azure-core sends in this process to PATH as JSON lines, secrets "
                         "scrubbed (tests/live/traffic.py); compare with scripts/compare_fidelity.py PATH")
    group.addoption("--live-only-on-emulator", action="store_true", default=False,
                    help="run live_only tests against the local workspace (to check the tests themselves)")


def pytest_configure(config: pytest.Config) -> None:
    global _recorder
    if LIVE:
        live.LiveWorkspace(str(live.live_uri()))  # a URI the plugin refuses stops the run here, saying why
    path = config.getoption("record_traffic", None)
    if path:
        from tests.live import traffic

        _recorder = traffic.Recorder(path)
        traffic.add_listener(_recorder)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _recorder
    if _recorder is not None:
        from tests.live import traffic

        traffic.remove_listener(_recorder)
        _recorder.close()
        _recorder = None


def _marker_reason(marker: Any) -> str:
    return str(marker.args[0] if marker.args else marker.kwargs.get("reason", "")).strip()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``emulator_only`` tests (and :data:`tests.live.mode.LIVE_UNFIT`) in live mode, ``live_only`` ones
    otherwise; each with its reason, which both markers require."""
    on_emulator = config.getoption("live_only_on_emulator", False)
    for item in items:
        reasons = {}
        for name in ("emulator_only", "live_only"):
            marker = item.get_closest_marker(name)
            if marker is not None:
                reasons[name] = _marker_reason(marker)
                if not reasons[name]:
                    raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name}(reason) needs a reason")
        if LIVE:
            reason = reasons.get("emulator_only") or live.live_unfit_reason(item.nodeid)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"emulator only: {reason}"))
        elif "live_only" in reasons and not on_emulator:
            item.add_marker(pytest.mark.skip(
                reason=f"live only: {reasons['live_only']} (set {live.LIVE_URI_VARIABLE} to run it)"
            ))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Optional[pytest.Item]) -> Iterator[None]:
    if _recorder is not None:
        _recorder.test = item.nodeid
    yield
    if _recorder is not None:
        _recorder.test = None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.live import traffic

    lines = [line for summary in _cleanup_summaries for line in summary.lines()]
    if _recorder is not None:
        lines.append(f"traffic recorded: {_recorder.lines} exchanges in {_recorder.path}")
    lines += [f"traffic listener failed: {failure}" for failure in traffic.listener_failures[:20]]
    if lines:
        terminalreporter.section("mlflow-azureml-registry")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    if LIVE:  # the live target is off loopback; tests that need the guard are emulator_only
        yield
        return
    with loopback_only() as refused:
        yield
    assert not refused, f"off-loopback connections attempted: {refused}"


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    """The local workspace, with its printed environment applied to this process (as a user's shell would); in
    live mode, the live target (:class:`tests.live.mode.LiveWorkspace`)."""
    if LIVE:
        yield from _live_workspace(tmp_path_factory)
        return
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


def _live_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The live target: reachable with the credential found, checked once (else the session stops there, saying
    why: :func:`tests.live.mode.unreachable`), MLflow pointed at it, and at the end every model this run owns emptied
    and archived (``tests/live/cleanup.py``)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from mlflow_azureml_registry import session
    from tests.live import cleanup, traffic

    ws = live.LiveWorkspace(str(live.live_uri()))
    problem = live.unreachable(ws.target_uri)
    if problem is not None:
        pytest.exit(problem, returncode=pytest.ExitCode.INTERRUPTED)
    saved = os.environ.get("MLFLOW_REGISTRY_URI")
    os.environ["MLFLOW_REGISTRY_URI"] = ws.target_uri
    session.reset()
    tracking = tmp_path_factory.mktemp("tracking")
    mlflow.set_tracking_uri(f"sqlite:///{tracking}/mlflow.db")
    mlflow.set_registry_uri(ws.target_uri)
    tracker = cleanup.Tracker(ws.target)
    traffic.add_listener(tracker)
    reached = False
    try:
        try:
            mlflow.MlflowClient(registry_uri=ws.target_uri).search_registered_models(max_results=1)
        except MlflowException as exc:
            pytest.exit(f"live mode: {ws.target_uri} cannot be reached: {exc.message}",
                        returncode=pytest.ExitCode.INTERRUPTED)
        reached = True
        yield ws
    finally:
        traffic.remove_listener(tracker)
        if reached:
            _cleanup_summaries.append(cleanup.sweep(ws.target, live.name_prefix(), tracker.born(), tracker.written))
        session.reset()
        if saved is None:
            os.environ.pop("MLFLOW_REGISTRY_URI", None)
        else:
            os.environ["MLFLOW_REGISTRY_URI"] = saved


@pytest.fixture
def client(workspace):
    import mlflow

    mlflow.set_registry_uri(workspace.registry_uri())
    return mlflow.MlflowClient()


_counter = itertools.count()


@pytest.fixture
def model_name() -> str:
    """A model name unique to the test (the workspace is shared by the session); live, under the run's prefix."""
    return f"{live.name_prefix()}m{next(_counter)}-{uuid.uuid4().hex[:8]}"


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
