"""Prompt-registry scenarios (MLflow 3): the ``MlflowClient`` prompt surface, as steps both registries must answer
alike (docs/research-prompts.md §8 lists the SQL registry's answers).

Each function takes a :class:`~tests.conformance.harness.Registry` whose ``client`` is an ``MlflowClient`` of one
path (in process or through ``mlflow server``); prompts and versions are recorded through :func:`prompt` and
:func:`version` (MLflow's entities, normalised: long templates by length and SHA-256).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import mlflow

from .conftest import global_uris
from .harness import Registry, token_kind

EXPERIMENT_IDS = "_mlflow_experiment_ids"
LOAD = dict(cache_ttl_seconds=0)  # MLflow's PromptCache would hide the store's answers


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False)
    if len(value) <= 300:
        return value
    return {"chars": len(value), "sha256": hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()}


def version(v: Any) -> Any:
    """A ``PromptVersion`` as compared (``user_id`` is the ``user-id`` difference; timestamps differ)."""
    if v is None:
        return None
    return {
        "name": v.name,
        "version": v.version,  # with its type, as the harness compares every answer
        "template": _text(v.template),
        "is_text": v.is_text_prompt,
        "tags": dict(v.tags),
        "_tags": {k: _text(val) for k, val in v._tags.items()},
        "commit_message": v.commit_message or None,
        "aliases": sorted(v.aliases or []),
        "variables": sorted(v.variables),
        "response_format": v.response_format,
        "model_config": v.model_config,
    }


def prompt(p: Any) -> Any:
    if p is None:
        return None
    return {"name": p.name, "description": p.description or None, "tags": dict(p.tags)}


def page(of: Any) -> Any:
    """A ``PagedList`` of prompts or prompt versions, and its next page's token: None or its type (``token_kind``)."""
    return lambda items: {"items": [of(i) for i in items], "token": token_kind(items.token)}


def _linked(r: Registry, name: str, timeout: float = 20.0) -> None:
    """Wait for MLflow's background thread that tags a prompt with its experiment (``_mlflow_experiment_ids``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = r.call(lambda c: c.get_prompt(name))
        if found is not None and EXPERIMENT_IDS in found.tags:
            return
        time.sleep(0.1)
    raise AssertionError(f"{r.kind}: MLflow never tagged prompt {name} with its experiment")


def _register(r: Registry, name: str, template: Any, **kwargs: Any) -> Any:
    """A set-up registration (not recorded), its experiment tag settled."""
    made = r.call(lambda c: c.register_prompt(name, template, **kwargs))
    _linked(r, name)
    return made


CHAT = [
    {"role": "system", "content": "Tu es un assistant {{ton}} — 日本語 😀"},
    {"role": "user", "content": "{{question}}"},
]


def prompt_lifecycle(r: Registry) -> None:
    """Text and chat versions, response format, model config, loads by version and alias, format."""
    g = r.name("greet")
    r.step("register-text", lambda c: c.register_prompt(
        g, "Hello {{name}}, be {{ style }}!", commit_message="first", tags={"team": "a"}), keep=version)
    _linked(r, g)
    r.step("get-prompt", lambda c: c.get_prompt(g), keep=prompt)
    r.step("register-chat", lambda c: c.register_prompt(
        g, CHAT, commit_message="chat", tags={"team": "b", "author": "bob"},
        response_format={"type": "object", "properties": {"answer": {"type": "string"}}},
        model_config={"model_name": "gpt-4o", "temperature": 0.2, "foo": 1}), keep=version)
    r.step("get-prompt-after", lambda c: c.get_prompt(g), keep=prompt)
    r.step("load-1", lambda c: c.load_prompt(f"prompts:/{g}/1", **LOAD), keep=version)
    r.step("load-latest", lambda c: c.load_prompt(f"prompts:/{g}@latest", **LOAD), keep=version)
    r.step("load-name", lambda c: c.load_prompt(g, **LOAD), keep=version)
    r.step("load-alias-unset", lambda c: c.load_prompt(f"prompts:/{g}@production", **LOAD), keep=version)
    r.step("set-alias", lambda c: c.set_prompt_alias(g, "production", 1))
    r.step("load-alias", lambda c: c.load_prompt(f"prompts:/{g}@production", **LOAD), keep=version)
    r.step("by-alias", lambda c: c.get_prompt_version_by_alias(g, "production"), keep=version)
    r.step("alias-missing-version", lambda c: c.set_prompt_alias(g, "x", 7))
    r.step("alias-latest", lambda c: c.set_prompt_alias(g, "latest", 1))
    r.step("alias-v1", lambda c: c.set_prompt_alias(g, "v1", 1))
    r.step("load-missing-version", lambda c: c.load_prompt(f"prompts:/{g}/9", **LOAD), keep=version)
    r.step("load-missing-prompt", lambda c: c.load_prompt(f"prompts:/{r.name('nope')}/1", **LOAD), keep=version)
    r.step("load-allow-missing", lambda c: c.load_prompt(
        f"prompts:/{r.name('nope')}/1", allow_missing=True, **LOAD), keep=version)
    r.step("format-text", lambda c: c.get_prompt_version(g, 1).format(name="Ann", style="kind"))
    r.step("format-chat", lambda c: c.get_prompt_version(g, 2).format(ton="calme", question="Ça va ?"))
    r.step("format-missing", lambda c: c.get_prompt_version(g, 1).format())
    r.step("get-version-2", lambda c: c.get_prompt_version(g, 2), keep=version)
    r.step("delete-alias", lambda c: c.delete_prompt_alias(g, "production"))
    r.step("load-deleted-alias", lambda c: c.load_prompt(f"prompts:/{g}@production", **LOAD), keep=version)


def prompt_search(r: Registry) -> None:
    """search_prompts (name, LIKE, ILIKE, tags, pages, order), search_prompt_versions, and that model searches and
    model reads do not show prompts."""
    a1, b2, c3, m = r.name("a1"), r.name("b2"), r.name("c3"), r.name("model")
    for name, team in ((a1, "x"), (b2, "y"), (c3, "x")):
        _register(r, name, f"{name} says {{{{what}}}}", tags={"team": team})
    r.call(lambda c: c.register_prompt(a1, "second {{what}}", commit_message="two"))
    r.call(lambda c: c.create_registered_model(m))
    mine = f"name LIKE '{r.prefix}-%'"
    r.step("search-mine", lambda c: c.search_prompts(mine), keep=page(prompt))
    r.step("search-name", lambda c: c.search_prompts(f"name = '{b2}'"), keep=page(prompt))
    r.step("search-like", lambda c: c.search_prompts(f"name LIKE '{r.prefix}-a%'"), keep=page(prompt))
    r.step("search-ilike", lambda c: c.search_prompts(f"name ILIKE '{r.prefix.upper()}-B%'"), keep=page(prompt))
    r.step("search-tag", lambda c: c.search_prompts(f"tags.team = 'x' AND {mine}"), keep=page(prompt))
    r.step("search-experiment", lambda c: c.search_prompts(f"experiment_id = '0' AND {mine}"), keep=page(prompt))
    r.step("search-experiment-ui", lambda c: c.search_prompts(  # the UI's form of the same filter
        f"tags.`_mlflow_experiment_ids` ILIKE '%,0,%' AND {mine}"), keep=page(prompt))
    r.step("search-page-1", lambda c: c.search_prompts(mine, max_results=2), keep=page(prompt))
    first = r.call(lambda c: c.search_prompts(mine, max_results=2))
    r.step("search-page-2", lambda c: c.search_prompts(mine, max_results=2, page_token=first.token),
           keep=page(prompt))
    r.step("search-desc", lambda c: c.search_prompts(mine, order_by=["name DESC"]), keep=page(prompt))
    r.step("versions", lambda c: c.search_prompt_versions(a1), keep=page(version))
    r.step("versions-page", lambda c: c.search_prompt_versions(a1, max_results=1), keep=page(version))
    r.step("versions-of-model", lambda c: c.search_prompt_versions(m), keep=page(version))
    r.step("versions-missing", lambda c: c.search_prompt_versions(r.name("nope")), keep=page(version))
    r.step("models-search", lambda c: c.search_registered_models(mine))
    r.step("models-search-prompt-name", lambda c: c.search_registered_models(f"name = '{a1}'"))
    r.step("model-versions-search", lambda c: c.search_model_versions(f"name = '{a1}'"))
    r.step("model-get-prompt", lambda c: c.get_registered_model(a1))
    r.step("model-version-get-prompt", lambda c: c.get_model_version(a1, "1"))
    r.step("prompt-get-model", lambda c: c.get_prompt(m), keep=prompt)
    r.step("prompt-version-of-model", lambda c: c.get_prompt_version(m, 1), keep=version)
    r.step("register-over-model", lambda c: c.register_prompt(m, "x"), keep=version)
    r.step("model-over-prompt", lambda c: c.create_registered_model(a1))


def prompt_tags(r: Registry) -> None:
    """Prompt and version tags, model config through version tags, delete a version, numbering after it."""
    g = r.name("tags")
    _register(r, g, "v1 {{x}}", tags={"team": "a", "author": "ann"})
    r.call(lambda c: c.register_prompt(g, "v2 {{x}}", tags={"author": "bob"}))
    r.step("set-tag", lambda c: c.set_prompt_tag(g, "env", "dev"))
    r.step("delete-tag", lambda c: c.delete_prompt_tag(g, "team"))
    r.step("get-prompt", lambda c: c.get_prompt(g), keep=prompt)
    r.step("set-version-tag", lambda c: c.set_prompt_version_tag(g, 1, "reviewed", "yes"))
    r.step("delete-version-tag", lambda c: c.delete_prompt_version_tag(g, 2, "author"))
    config = json.dumps({"model_name": "m", "max_tokens": 5})
    r.step("set-model-config", lambda c: c.set_prompt_version_tag(g, 1, "_mlflow_prompt_model_config", config))
    r.step("version-1", lambda c: c.get_prompt_version(g, 1), keep=version)
    r.step("delete-model-config", lambda c: c.delete_prompt_version_tag(g, 1, "_mlflow_prompt_model_config"))
    r.step("set-short-template", lambda c: c.set_prompt_version_tag(g, 1, "mlflow.prompt.text", "changed {{y}}"))
    r.step("version-1-after", lambda c: c.get_prompt_version(g, 1), keep=version)
    r.step("version-2", lambda c: c.get_prompt_version(g, 2), keep=version)
    r.step("alias-prod", lambda c: c.set_prompt_alias(g, "prod", 2))
    r.step("delete-version", lambda c: c.delete_prompt_version(g, "2"))
    r.step("get-deleted", lambda c: c.get_prompt_version(g, 2), keep=version)
    r.step("load-deleted-alias", lambda c: c.load_prompt(f"prompts:/{g}@prod", **LOAD), keep=version)
    r.step("versions-after", lambda c: c.search_prompt_versions(g), keep=page(version))
    r.step("register-after", lambda c: c.register_prompt(g, "v3 {{x}}"), keep=version)
    r.step("delete-missing-version", lambda c: c.delete_prompt_version(g, "9"))
    r.step("delete-bad-version", lambda c: c.delete_prompt_version(g, "prod"))
    r.step("tag-bad-version", lambda c: c.set_prompt_version_tag(g, "prod", "k", "v"))


def prompt_delete(r: Registry) -> None:
    """delete_prompt: an empty prompt, a prompt with versions, a model, a missing name; register_prompt's rollback
    of a failed first version."""
    e, v, m, q = r.name("empty"), r.name("full"), r.name("model"), r.name("rolled")
    _register(r, e, "bye {{x}}", tags={"team": "a"})
    r.step("delete-only-version", lambda c: c.delete_prompt_version(e, "1"))
    r.step("delete-empty", lambda c: c.delete_prompt(e))
    r.step("get-deleted", lambda c: c.get_prompt(e), keep=prompt)
    r.step("search-deleted", lambda c: c.search_prompts(f"name = '{e}'"), keep=page(prompt))
    r.step("models-search-deleted", lambda c: c.search_registered_models(f"name = '{e}'"))
    r.step("load-deleted", lambda c: c.load_prompt(f"prompts:/{e}/1", **LOAD), keep=version)
    r.step("register-after-delete", lambda c: c.register_prompt(e, "again {{x}}"), keep=version)
    r.step("get-revived", lambda c: c.get_prompt(e), keep=lambda p: p and {**prompt(p), "tags": {
        k: val for k, val in p.tags.items() if k != "_mlflow_experiment_ids"}})
    _register(r, v, "kept {{x}}")
    r.step("delete-with-versions", lambda c: c.delete_prompt(v))
    r.step("delete-missing", lambda c: c.delete_prompt(r.name("nope")))
    r.call(lambda c: c.create_registered_model(m))
    r.step("delete-model-name", lambda c: c.delete_prompt(m))
    r.step("register-too-long", lambda c: c.register_prompt(q, "a" * 100_001), keep=version)
    r.step("after-rollback", lambda c: c.get_prompt(q), keep=prompt)
    r.step("register-after-rollback", lambda c: c.register_prompt(q, "fine {{x}}"), keep=version)


def prompt_limits(r: Registry) -> None:
    """Templates up to MLflow's limit (100,000 characters) and its refusal above it; chat, unicode, variables."""
    t = r.name("limits")
    long_text = "{{var}} " + "a" * (100_000 - 8)
    r.step("register-100k", lambda c: c.register_prompt(t, long_text), keep=version)
    _linked(r, t)
    r.step("load-100k", lambda c: c.load_prompt(f"prompts:/{t}/1", **LOAD), keep=version)
    r.step("register-100001", lambda c: c.register_prompt(t, "a" * 100_001), keep=version)
    r.step("register-emoji", lambda c: c.register_prompt(t, "😀" * 99_990 + "{{e}}"), keep=version)
    chat = [{"role": "user", "content": "{{q}} " + "b" * (99_993 - 42)}]
    r.step("chat-size", lambda c: len(json.dumps(chat)))
    r.step("register-chat-limit", lambda c: c.register_prompt(t, chat), keep=version)
    r.step("register-chat-escaped", lambda c: c.register_prompt(t, [{"role": "user", "content": "é" * 20_000}]),
           keep=version)
    r.step("versions", lambda c: c.search_prompt_versions(t), keep=page(version))
    r.step("load-chat", lambda c: c.load_prompt(f"prompts:/{t}/3", **LOAD), keep=version)
    r.step("format-chat", lambda c: c.load_prompt(f"prompts:/{t}/3", **LOAD).format(q="why")[0]["content"][:20])
    r.step("prompt-tag-too-long", lambda c: c.set_prompt_tag(t, "big", "x" * 100_001))
    r.step("version-tag-too-long", lambda c: c.set_prompt_version_tag(t, 1, "big", "x" * 100_001))
    r.step("set-long-template-tag", lambda c: c.set_prompt_version_tag(t, 1, "mlflow.prompt.text", "z" * 5_000))
    # a value the version's files hold, then replaced by a short one, then deleted: MLflow reads the tag, then nothing
    r.step("set-short-over-file-held", lambda c: c.set_prompt_version_tag(t, 2, "mlflow.prompt.text", "tiny"))
    r.step("read-short-over-file-held", lambda c: c.get_prompt_version(t, 2).template)
    r.step("delete-file-held-template", lambda c: c.delete_prompt_version_tag(t, 2, "mlflow.prompt.text"))
    r.step("read-deleted-file-held", lambda c: c.get_prompt_version(t, 2).tags.get("mlflow.prompt.text"))
    r.step("name-with-dot", lambda c: c.register_prompt(f"{t}.dotted", "x"), keep=version)
    r.step("name-with-space", lambda c: c.register_prompt(f"{t} spaced", "x"), keep=version)


def prompt_links(r: Registry) -> None:
    """Links from a prompt version to a run, a logged model and a trace: written to the tracking store, the registry
    only read. MLflow's ``AbstractStore`` (which runs in the client, whatever the path) writes them through MLflow's
    *global* tracking URI, so it is the path client's tracking URI meanwhile (``mlflow server``'s, over REST)."""
    with global_uris(r.client.tracking_uri, mlflow.get_registry_uri()):
        _links(r)


def _links(r: Registry) -> None:
    p, q = r.name("linked"), r.name("linked2")
    _register(r, p, "linked {{x}}")
    _register(r, q, "other {{x}}")
    run = r.call(lambda c: c.create_run("0")).info.run_id
    linked = "mlflow.linkedPrompts"
    r.step("link-run", lambda c: c.link_prompt_version_to_run(run, c.get_prompt_version(p, 1)))
    r.step("link-run-again", lambda c: c.link_prompt_version_to_run(run, f"prompts:/{p}/1"))
    r.step("run-tag", lambda c: json.loads(c.get_run(run).data.tags[linked]))
    model_id = r.call(lambda c: c.create_logged_model("0")).model_id
    r.step("link-model", lambda c: c.link_prompt_version_to_model(p, "1", model_id))
    r.step("model-tag", lambda c: json.loads(c.get_logged_model(model_id).tags[linked]))
    r.step("link-missing-version", lambda c: c.link_prompt_version_to_model(p, "7", model_id))
    with mlflow.start_span("prompted") as span:
        trace_id = span.trace_id
    mlflow.flush_trace_async_logging()  # the trace is exported in the background
    r.step("link-trace", lambda c: c.link_prompt_versions_to_trace([c.get_prompt_version(p, 1)], trace_id))
    r.step("link-trace-2", lambda c: c.link_prompt_versions_to_trace([c.get_prompt_version(q, 1)], trace_id))
    r.step("trace-tag", lambda c: json.loads(c.get_trace(trace_id).info.tags[linked]))


SCENARIOS = {f.__name__: f for f in (prompt_lifecycle, prompt_search, prompt_tags, prompt_delete, prompt_limits,
                                     prompt_links)}
