"""The MLflow UI in a real headless browser: Debian's Chromium driven by Playwright, against ``mlflow server``.

Chromium is ``/usr/bin/chromium`` (``scripts/setup-browser.sh`` installs it; Playwright downloads no browser).
Without it the UI tests skip, except under CI (``CI`` set), where they fail: CI never skips them silently.
Chromium starts with a fresh profile and no background networking; page requests that leave loopback are
aborted and recorded (``browser.off_loopback``), and so are the UI's failed API calls (``browser.api_errors``).
Screenshots of every page checked, and of the page of a failed test, go to ``test-artifacts/ui/<mlflow version>/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tests.servers import MlflowServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root, in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui" / mlflow.__version__
TIMEOUT_MS = 30_000  # one page of the UI may take a few plugin round trips on a loaded 2-core machine
OFF_LOOPBACK = re.compile(r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost|\[::1\])(?:[:/]|$))[a-z]+://")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str, fix: str = "bash scripts/setup-browser.sh") -> None:
    message = f"{reason}; install it with `{fix}`"
    if in_ci():
        pytest.fail(f"CI is set, so the UI tests may not skip: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    """Before anything is started: skip (or, under CI, fail) when there is no browser to drive."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Chromium is not installed ({CHROMIUM} not found)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the Python package playwright (the [test] extra) is not installed", "bash scripts/setup.sh")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """This MLflow version's screenshot folder, emptied of an earlier run's screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """``mlflow server --registry-store-uri <the plugin's URI>`` over the local workspace."""
    with MlflowServer(tmp_path_factory.mktemp("ui-server"), registry_uri=workspace.registry_uri()) as running:
        yield running


class Browser:
    """A Playwright persistent context on Debian's Chromium, with the requests it refused (``off_loopback``)
    and the MLflow API calls of the UI that failed (``api_errors``: "status METHOD url")."""

    def __init__(self, context) -> None:
        self.context = context
        self.off_loopback: list[str] = []
        self.api_errors: list[str] = []

        def refuse(route) -> None:
            self.off_loopback.append(route.request.url)
            route.abort()

        def check(response) -> None:
            if "/ajax-api/" in response.url and response.status >= 400 and not _expected_failure(response):
                self.api_errors.append(f"{response.status} {response.request.method} {response.url}")

        context.route(OFF_LOOPBACK, refuse)
        context.on("response", check)


def _expected_failure(response) -> bool:
    """MLflow 3's UI asks for the signed-in user, which only ``mlflow server --app-name basic-auth`` serves."""
    return response.status == 404 and "/ajax-api/2.0/mlflow/users/current" in response.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    root = Path(tempfile.mkdtemp(prefix="ui-chromium-"))
    profile = root / "profile"
    # Chromium's crash-report database (and its crashpad handler's command line) follow XDG_CONFIG_HOME: here,
    # not in the user's ~/.config, and every process of this browser names `root`.
    env = {**os.environ, "XDG_CONFIG_HOME": str(root / "config"), "XDG_CACHE_HOME": str(root / "cache")}
    try:
        with sync_playwright() as playwright:  # stops its driver process on exit
            context = playwright.chromium.launch_persistent_context(
                str(profile),  # a fresh --user-data-dir
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                env=env,
                viewport={"width": 1600, "height": 1000},
                locale="en-US",
                timezone_id="UTC",
                service_workers="block",
            )
            try:
                context.set_default_timeout(TIMEOUT_MS)
                yield Browser(context)
            finally:
                context.close()  # ends the browser and its children
    finally:
        _kill_leftovers(str(root))
        shutil.rmtree(root, ignore_errors=True)


def _kill_leftovers(marker: str) -> None:
    """SIGKILL, by pid, any process still running with this test's browser folder in its command line
    (none, normally: closing the context ends the browser, and its crashpad handlers exit with it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"ui_report_{report.when}", report)


@pytest.fixture
def page(browser: Browser, artifacts: Path, request: pytest.FixtureRequest):
    """A new tab; MLflow's one-time "new Model Registry UI" promotion is closed whenever it shows up, and so is
    MLflow 3's "MLflow Assistant" side panel (served by a local server, it opens by itself on the first page).

    The UI keeps its settings (the "New model registry UI" switch, the dismissed promotion, the assistant
    panel) in the server origin's localStorage, which the module's tests share: after a failed test it is
    cleared, so a setting the test left half-way changed cannot fail the tests after it."""
    tab = browser.context.new_page()
    promo = tab.get_by_role("dialog", name="Flexible, governed deployments with the new Model Registry UI")
    tab.add_locator_handler(promo, lambda dialog: dialog.get_by_role("button", name="Close").click())
    # The panel takes 400 px of the page's width (and a place in every screenshot). Closed, it leaves a button
    # with the same attribute and text, but no "Close" button in it. Its "Close" gets a click event, not a mouse
    # click: the promotion, a modal dialog, may be over the page by then, and would take a mouse click (the
    # handler would wait for it to go, and the promotion's handler cannot run while this one does).
    assistant = tab.locator("[data-assistant-ui]").filter(has=tab.get_by_role("button", name="Close", exact=True))
    tab.add_locator_handler(
        assistant, lambda panel: panel.get_by_role("button", name="Close", exact=True).dispatch_event("click"))
    try:
        yield tab
    finally:
        report = getattr(request.node, "ui_report_call", None)
        if report is not None and report.failed:
            try:
                tab.screenshot(path=str(artifacts / f"FAILED-{request.node.name}.png"), full_page=True)
            except Exception as error:  # the page may be what failed
                print(f"no failure screenshot: {error}")
            _forget_ui_settings(tab)
        tab.close()


def _forget_ui_settings(tab) -> None:
    """Clear the localStorage of the origin ``tab`` is on (MLflow's defaults again on its next page)."""
    if not tab.url.startswith(("http://", "https://")):
        return  # the test failed before it opened a page of the server
    try:
        tab.evaluate("() => window.localStorage.clear()")
    except Exception as error:
        print(f"UI settings not cleared: {error}")


@pytest.fixture
def snap(page, artifacts: Path):
    """``snap(name)``: a full-page screenshot of the current page, ``<artifacts>/<name>.png``."""

    def take(name: str) -> Path:
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")  # no half-faded dialogs
        return path

    return take
