"""MLflow 3's Prompts page, through ``mlflow server --registry-store-uri azureml-registry://...``, in headless Chromium.

Prompts are registered through the server's REST API (a chat prompt with an alias, a text prompt); the Prompts page
lists them when searched for this module's names, and a prompt's page shows its versions and its template, read back
from Azure ML. Model pages do not list prompts. The last test reads the server log for tracebacks.
"""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace
from urllib.parse import quote

import mlflow
import pytest

from mlflow_azureml_registry import prompts
from tests.servers import plugin_tracebacks

try:
    from playwright.sync_api import expect
except ImportError:  # conftest's _browser_available skips every test (or, under CI, fails it)
    expect = None

pytestmark = pytest.mark.skipif(not prompts.supported(), reason="MLflow without the prompt API has no Prompts page")

TEMPLATE = "Bonjour {{name}}, parlons de {{topic}} — 日本語"


@pytest.fixture(scope="module")
def rest(server):
    return mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)


@pytest.fixture(scope="module")
def registered(rest):
    prefix = f"uip{uuid.uuid4().hex[:6]}"
    names = SimpleNamespace(prefix=prefix, chat=f"{prefix}-chat", text=f"{prefix}-text")
    rest.register_prompt(names.text, "first {{x}}", commit_message="draft")
    rest.register_prompt(names.text, TEMPLATE, commit_message="second", tags={"team": "ui"})
    rest.set_prompt_alias(names.text, "production", 2)
    rest.register_prompt(names.chat, [{"role": "user", "content": "{{question}}"}])
    return names


def test_prompts_page_lists_the_prompts(page, server, registered, snap):
    page.goto(f"{server.url}/#/prompts")
    search = page.get_by_placeholder("Search prompts")
    expect(search).to_be_visible()
    search.fill(registered.prefix)
    search.press("Enter")
    expect(page.get_by_role("link", name=registered.text, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=registered.chat, exact=True)).to_be_visible()
    snap("prompts-list")


def test_prompt_page_shows_versions_and_template(page, server, registered, snap):
    page.goto(f"{server.url}/#/prompts/{quote(registered.text)}")
    expect(page.get_by_text(registered.text).first).to_be_visible()
    expect(page.get_by_text("production").first).to_be_visible()  # the alias of version 2
    expect(page.get_by_text(re.compile(r"Bonjour \{\{\s*name\s*\}\}")).first).to_be_visible()
    expect(page.get_by_text(re.compile("Commit message: ?second"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("^Version 1"))).to_be_visible()
    snap("prompt-page")
    page.get_by_text("Version 1", exact=True).click()  # the other version, read from Azure ML when clicked
    expect(page.get_by_role("heading", name="Viewing version 1")).to_be_visible()
    expect(page.get_by_text(re.compile("Commit message: ?draft"))).to_be_visible()
    expect(page.get_by_text("first {{x}}", exact=True)).to_be_visible()


def test_model_pages_do_not_list_prompts(page, server, registered, snap):
    page.goto(f"{server.url}/#/models?searchInput={quote(registered.prefix)}")
    expect(page.get_by_role("heading", name="Registered Models")).to_be_visible()
    expect(page.get_by_text(re.compile("No models (found|yet)|No results", re.IGNORECASE)).first).to_be_visible()
    expect(page.get_by_role("link", name=registered.text, exact=True)).to_have_count(0)
    snap("models-without-prompts")


def test_server_logged_no_traceback(server, browser):
    assert plugin_tracebacks(server.log()) == []
    assert browser.off_loopback == []
    assert browser.api_errors == []
