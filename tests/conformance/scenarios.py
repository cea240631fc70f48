"""Registry scenarios: the MlflowClient registry surface, as steps both registries must answer alike.

Each function takes a :class:`~tests.conformance.harness.Registry` and calls ``r.step`` per registry call.
Scenarios only use what both MLflow ends (2.16 and 3.x) have; version-specific steps check ``MLFLOW_3``.
"""

from __future__ import annotations

import time

import mlflow

from .harness import Registry

MLFLOW_3 = int(mlflow.__version__.split(".")[0]) >= 3


def _pause() -> None:
    """Timestamps are milliseconds: keep writes whose order a step compares in distinct ones."""
    time.sleep(0.02)


def registered_models(r: Registry) -> None:
    a, b = r.name("a"), r.name("b")
    r.step("create", lambda c: c.create_registered_model(a, tags={"team": "risk", "t": "1"}, description="first"))
    r.step("create-no-description", lambda c: c.create_registered_model(b))
    r.step("create-again", lambda c: c.create_registered_model(a))
    r.step("get", lambda c: c.get_registered_model(a))
    r.step("update-description", lambda c: c.update_registered_model(a, description="second"))
    r.step("set-tag", lambda c: c.set_registered_model_tag(a, "owner", "alice"))
    r.step("overwrite-tag", lambda c: c.set_registered_model_tag(a, "t", "2"))
    r.step("delete-tag", lambda c: c.delete_registered_model_tag(a, "team"))
    r.step("delete-missing-tag", lambda c: c.delete_registered_model_tag(a, "nope"))
    r.step("get-after", lambda c: c.get_registered_model(a))
    r.step("get-missing", lambda c: c.get_registered_model(r.name("missing")))
    r.step("update-missing", lambda c: c.update_registered_model(r.name("missing"), description="x"))
    r.step("tag-missing-model", lambda c: c.set_registered_model_tag(r.name("missing"), "k", "v"))
    r.step("search-by-name", lambda c: c.search_registered_models(f"name = '{a}'"))
    r.step("rename", lambda c: c.rename_registered_model(b, r.name("b2")))
    r.step("delete", lambda c: c.delete_registered_model(b))


def versions(r: Registry) -> None:
    m = r.name("v")
    r.call(lambda c: c.create_registered_model(m))
    r.step("create-1", lambda c: c.create_model_version(m, r.source, r.run_id, tags={"k": "v"}, description="one"))
    r.step("create-2", lambda c: c.create_model_version(m, r.source, r.run_id))
    r.step("create-3", lambda c: c.create_model_version(m, r.source, r.run_id))
    r.step("create-missing-model", lambda c: c.create_model_version(r.name("missing"), r.source, r.run_id))
    r.step("get-2", lambda c: c.get_model_version(m, "2"))
    r.step("get-int", lambda c: c.get_model_version(m, 1))
    r.step("get-missing", lambda c: c.get_model_version(m, "9"))
    r.step("update", lambda c: c.update_model_version(m, "2", description="two"))
    r.step("set-tag", lambda c: c.set_model_version_tag(m, "2", "validated", "yes"))
    r.step("set-tag-drop", lambda c: c.set_model_version_tag(m, "2", "drop", "me"))
    r.step("delete-tag", lambda c: c.delete_model_version_tag(m, "2", "drop"))
    r.step("tag-missing-version", lambda c: c.set_model_version_tag(m, "9", "k", "v"))
    r.step("get-2-after", lambda c: c.get_model_version(m, "2"))
    r.step("download-uri", lambda c: c.get_model_version_download_uri(m, "1"), keep=lambda uri: isinstance(uri, str))
    r.step("latest", lambda c: c.get_latest_versions(m))
    r.step("latest-none", lambda c: c.get_latest_versions(m, stages=["None"]))
    r.step("model", lambda c: c.get_registered_model(m))
    r.step("delete-3", lambda c: c.delete_model_version(m, "3"))
    r.step("get-3", lambda c: c.get_model_version(m, "3"))
    r.step("delete-3-again", lambda c: c.delete_model_version(m, "3"))
    r.step("create-after-delete", lambda c: c.create_model_version(m, r.source, r.run_id))
    r.step("model-after-delete", lambda c: c.get_registered_model(m))
    r.step("search-versions", lambda c: c.search_model_versions(f"name = '{m}'"))


def stages(r: Registry) -> None:
    m = r.name("s")
    r.call(lambda c: c.create_registered_model(m))
    for _ in range(4):
        r.call(lambda c: c.create_model_version(m, r.source, r.run_id))
    r.step("to-staging", lambda c: c.transition_model_version_stage(m, "1", "staging"))
    r.step("to-production", lambda c: c.transition_model_version_stage(m, "2", "Production"))
    r.step("to-production-archiving", lambda c: c.transition_model_version_stage(m, "3", "Production", True))
    r.step("versions", lambda c: [c.get_model_version(m, v) for v in ("1", "2", "3", "4")])
    r.step("latest", lambda c: c.get_latest_versions(m))
    r.step("latest-production", lambda c: c.get_latest_versions(m, stages=["Production"]))
    r.step("latest-archived", lambda c: c.get_latest_versions(m, stages=["archived"]))
    r.step("stage-trailing-space", lambda c: c.transition_model_version_stage(m, "4", "Production ", False))
    r.step("stage-unknown", lambda c: c.transition_model_version_stage(m, "4", "QA", False))
    r.step("archive-to-none", lambda c: c.transition_model_version_stage(m, "4", "None", True))
    r.step("to-archived", lambda c: c.transition_model_version_stage(m, "4", "Archived", False))
    r.step("back-to-none", lambda c: c.transition_model_version_stage(m, "4", "None", False))
    r.step("missing-version", lambda c: c.transition_model_version_stage(m, "9", "Staging", False))
    r.step("model", lambda c: c.get_registered_model(m))
    r.step("search-stage", lambda c: c.search_model_versions(f"name = '{m}'"))


def archived_versions_share_a_timestamp(r: Registry) -> None:
    """MLflow stamps the transitioned version and the versions it archives with one time."""
    m = r.name("arch")
    r.call(lambda c: c.create_registered_model(m))
    for _ in range(3):
        r.call(lambda c: c.create_model_version(m, r.source, r.run_id))
    r.call(lambda c: c.transition_model_version_stage(m, "1", "Production", False))
    r.call(lambda c: c.transition_model_version_stage(m, "2", "Production", False))
    _pause()

    def stamps(c):
        c.transition_model_version_stage(m, "3", "Production", True)
        got = {v: c.get_model_version(m, v).last_updated_timestamp for v in ("1", "2", "3")}
        model = c.get_registered_model(m).last_updated_timestamp
        return {"versions-share-one": len(set(got.values())) == 1, "model-moved-with-them": model == got["3"]}

    r.step("archive-stamps", stamps)


def aliases(r: Registry) -> None:
    m = r.name("al")
    r.call(lambda c: c.create_registered_model(m))
    for _ in range(3):
        r.call(lambda c: c.create_model_version(m, r.source, r.run_id))
    r.step("set-champion", lambda c: c.set_registered_model_alias(m, "champion", "1"))
    r.step("set-challenger", lambda c: c.set_registered_model_alias(m, "challenger", "2"))
    r.step("move-champion", lambda c: c.set_registered_model_alias(m, "champion", "2"))
    r.step("set-old", lambda c: c.set_registered_model_alias(m, "old", "3"))
    r.step("by-alias", lambda c: c.get_model_version_by_alias(m, "champion"))
    r.step("version-aliases", lambda c: c.get_model_version(m, "2"))
    r.step("model-aliases", lambda c: c.get_registered_model(m))
    r.step("latest-with-aliases", lambda c: c.get_latest_versions(m))  # aliases filled from MLflow 2.21 on
    r.step("by-missing-alias", lambda c: c.get_model_version_by_alias(m, "no-such-alias"))
    r.step("alias-missing-version", lambda c: c.set_registered_model_alias(m, "x", "9"))
    r.step("alias-missing-model", lambda c: c.set_registered_model_alias(r.name("missing"), "x", "1"))
    r.step("alias-invalid", lambda c: c.set_registered_model_alias(m, "bad alias", "1"))
    r.step("alias-reserved-latest", lambda c: c.set_registered_model_alias(m, "latest", "1"))
    r.step("alias-reserved-v1", lambda c: c.set_registered_model_alias(m, "v1", "1"))
    r.step("delete-challenger", lambda c: c.delete_registered_model_alias(m, "challenger"))
    r.step("delete-missing-alias", lambda c: c.delete_registered_model_alias(m, "nope"))
    r.step("delete-version-3", lambda c: c.delete_model_version(m, "3"))
    r.step("by-alias-of-deleted", lambda c: c.get_model_version_by_alias(m, "old"))
    r.step("model-after", lambda c: c.get_registered_model(m))
    r.step("search-aliases", lambda c: c.search_model_versions(f"name = '{m}'"))
    if MLFLOW_3:
        r.step("by-latest", lambda c: c.get_model_version_by_alias(m, "latest"))


def search_models(r: Registry) -> None:
    names = [r.name(s) for s in ("sa", "sb", "Sc", "sd")]
    for i, n in enumerate(names):
        r.call(lambda c, n=n, i=i: c.create_registered_model(n, tags={"k": f"v{i % 2}", "i": str(i)}))
        _pause()
    r.call(lambda c: c.create_model_version(names[0], r.source, r.run_id))  # the oldest model, updated last
    r.call(lambda c: c.set_registered_model_alias(names[0], "champion", "1"))
    p = r.prefix
    r.step("like", lambda c: c.search_registered_models(f"name LIKE '{p}-s%'"))
    r.step("ilike", lambda c: c.search_registered_models(f"name ILIKE '{p}-s%'"))
    r.step("tag", lambda c: c.search_registered_models(f"name LIKE '{p}%' AND tags.k = 'v1'"))
    r.step("tag-like", lambda c: c.search_registered_models(f"name LIKE '{p}%' AND tags.i LIKE '%3'"))
    r.step("order-name-desc", lambda c: c.search_registered_models(f"name LIKE '{p}%'", order_by=["name DESC"]))
    r.step("order-last-updated", lambda c: c.search_registered_models(
        f"name LIKE '{p}%'", order_by=["last_updated_timestamp DESC"]))
    r.step("order-timestamp-asc", lambda c: c.search_registered_models(
        f"name LIKE '{p}%'", order_by=["timestamp ASC", "name DESC"]))
    r.step("order-creation-timestamp", lambda c: c.search_registered_models(
        f"name LIKE '{p}%'", order_by=["name ASC", "creation_timestamp DESC"]))
    r.step("order-unknown", lambda c: c.search_registered_models(order_by=["colour DESC"]))
    r.step("filter-invalid", lambda c: c.search_registered_models("name > 'a'"))
    r.step("filter-garbage", lambda c: c.search_registered_models("name = "))

    def pages(c):
        seen, token = [], None
        while True:
            page = c.search_registered_models(f"name LIKE '{p}%'", max_results=3, page_token=token)
            seen.append([m.name for m in page])
            token = page.token
            if not token:
                return seen

    r.step("pages", pages)
    r.step("bad-page-token", lambda c: c.search_registered_models(page_token="not-a-token"))
    r.step("max-results-zero", lambda c: c.search_registered_models(max_results=0))

    def token_of_another_search(c):  # page 2 of one search asked of another (page-token-bound-to-its-search)
        first = c.search_registered_models(f"name LIKE '{p}%'", max_results=3)
        return c.search_registered_models(f"name LIKE '{p}-sa%'", max_results=3, page_token=first.token)

    r.step("token-of-another-search", token_of_another_search)


def search_versions(r: Registry) -> None:
    m, n = r.name("sv"), r.name("sw")
    for name in (m, n):
        r.call(lambda c, name=name: c.create_registered_model(name))
        for _ in range(3):
            r.call(lambda c, name=name: c.create_model_version(name, r.source, r.run_id))
            _pause()
    r.call(lambda c: c.set_model_version_tag(m, "2", "plus", "a+b"))
    r.call(lambda c: c.set_model_version_tag(m, "3", "plus", "a b"))
    p = r.prefix
    r.step("default-order-after-tag", lambda c: c.search_model_versions(f"name = '{m}'"))
    r.step("like", lambda c: c.search_model_versions(f"name LIKE '{p}-s%'"))
    r.step("version-number", lambda c: c.search_model_versions(f"name = '{m}' AND version_number = 2"))
    r.step("version-number-gt", lambda c: c.search_model_versions(f"name = '{n}' AND version_number > 1"))
    r.step("tag-plus", lambda c: c.search_model_versions(f"name = '{m}' AND tags.plus = 'a+b'"))
    r.step("tag-space", lambda c: c.search_model_versions(f"name = '{m}' AND tags.plus = 'a b'"))
    r.step("run-id", lambda c: c.search_model_versions(f"name LIKE '{p}%' AND run_id = '{r.run_id}'"))
    r.step("order-version-asc", lambda c: c.search_model_versions(
        f"name LIKE '{p}%'", order_by=["version_number ASC"]))
    r.step("order-name-desc", lambda c: c.search_model_versions(f"name LIKE '{p}%'", order_by=["name DESC"]))
    r.step("order-last-updated", lambda c: c.search_model_versions(
        f"name LIKE '{p}%'", order_by=["last_updated_timestamp DESC"]))
    r.step("order-unknown", lambda c: c.search_model_versions(f"name = '{m}'", order_by=["colour"]))
    r.step("filter-invalid", lambda c: c.search_model_versions("foo = 'bar'"))

    def pages(c):
        seen, token = [], None
        while True:
            page = c.search_model_versions(f"name LIKE '{p}%'", max_results=4, page_token=token)
            seen.append([(v.name, v.version) for v in page])
            token = page.token
            if not token:
                return seen

    r.step("pages", pages)

    def token_of_another_search(c):  # page 2 of one search asked of another (page-token-bound-to-its-search)
        first = c.search_model_versions(f"name LIKE '{p}%'", max_results=4)
        return c.search_model_versions(f"name = '{m}'", max_results=4, page_token=first.token)

    r.step("token-of-another-search", token_of_another_search)


def model_timestamps(r: Registry) -> None:
    """A registered model's last update moves with its versions, as in MLflow (issue #14)."""
    first, second = r.name("ts-first"), r.name("ts-second")
    r.call(lambda c: c.create_registered_model(first))
    _pause()
    r.call(lambda c: c.create_registered_model(second))
    _pause()
    r.call(lambda c: c.create_model_version(first, r.source, r.run_id))
    r.step("order-after-create", lambda c: [m.name for m in c.search_registered_models(
        f"name LIKE '{r.prefix}-ts%'", order_by=["last_updated_timestamp DESC"])])

    def moved(c):
        mv = c.get_model_version(first, "1")
        return c.get_registered_model(first).last_updated_timestamp == mv.creation_timestamp

    r.step("model-stamped-by-version", moved)
    _pause()
    r.call(lambda c: c.transition_model_version_stage(first, "1", "Staging", False))
    r.step("order-after-transition", lambda c: [m.name for m in c.search_registered_models(
        f"name LIKE '{r.prefix}-ts%'", order_by=["timestamp DESC"])])
    r.call(lambda c: c.update_registered_model(second, description="touched"))
    r.step("order-after-update", lambda c: [m.name for m in c.search_registered_models(
        f"name LIKE '{r.prefix}-ts%'", order_by=["last_updated_timestamp DESC"])])
    r.call(lambda c: c.set_registered_model_tag(first, "k", "v"))  # no move in MLflow
    r.call(lambda c: c.set_registered_model_alias(first, "a", "1"))  # no move in MLflow
    r.step("order-after-tag-and-alias", lambda c: [m.name for m in c.search_registered_models(
        f"name LIKE '{r.prefix}-ts%'", order_by=["last_updated_timestamp DESC"])])
    _pause()
    r.call(lambda c: c.delete_model_version(first, "1"))
    r.step("order-after-delete", lambda c: [m.name for m in c.search_registered_models(
        f"name LIKE '{r.prefix}-ts%'", order_by=["last_updated_timestamp DESC"])])


def invalid_input(r: Registry) -> None:
    m = r.name("bad")
    r.call(lambda c: c.create_registered_model(m))
    r.call(lambda c: c.create_model_version(m, r.source, r.run_id))
    r.step("empty-name", lambda c: c.create_registered_model(""))
    r.step("get-empty-name", lambda c: c.get_registered_model(""))
    r.step("version-not-integer", lambda c: c.get_model_version(m, "abc"))
    r.step("version-zero", lambda c: c.get_model_version(m, "0"))
    r.step("tag-key-missing", lambda c: c.set_model_version_tag(m, "1", "", "v"))
    r.step("rm-tag-key-missing", lambda c: c.set_registered_model_tag(m, "", "v"))
    r.step("rm-tag-key-invalid", lambda c: c.set_registered_model_tag(m, "../x", "v"))
    r.step("tags-on-create", lambda c: c.create_registered_model(r.name("tagged"), tags={"a": "1", "b": ""}))
    r.step("version-tags-on-create", lambda c: c.create_model_version(m, r.source, r.run_id, tags={"x": "y"}),
           keep=lambda mv: mv.tags)
    r.step("tag-key-reserved-looking", lambda c: c.set_registered_model_tag(m, "mlflow.note", "v"))
    r.step("stage-bad", lambda c: c.get_latest_versions(m, stages=["Prod"]))
    r.step("name-with-space", lambda c: c.create_registered_model(r.name("has space")))
    r.step("source-not-there", lambda c: c.create_model_version(m, f"runs:/{r.run_id}/not-there", r.run_id),
           keep=lambda mv: mv.version)


def copy_version(r: Registry) -> None:
    src, dst = r.name("src"), r.name("dst")
    r.call(lambda c: c.create_registered_model(src))
    r.call(lambda c: c.create_model_version(src, r.source, r.run_id, tags={"k": "v"}, description="d"))
    r.step("copy", lambda c: c.copy_model_version(f"models:/{src}/1", dst))
    r.step("copy-again", lambda c: c.copy_model_version(f"models:/{src}/1", dst))
    r.step("dst", lambda c: c.get_registered_model(dst))


def fluent(r: Registry) -> None:
    """``mlflow.register_model`` and the fluent searches: only on paths that use the global URIs."""
    if not r.fluent:  # the fluent API would reach MLflow's global registry, not this path's
        return
    m = r.name("fl")
    r.step("register", lambda c: mlflow.register_model(r.source, m))
    r.step("register-again", lambda c: mlflow.register_model(r.source, m))
    r.step("search-models", lambda c: mlflow.search_registered_models(filter_string=f"name = '{m}'"))
    r.step("search-versions", lambda c: mlflow.search_model_versions(filter_string=f"name = '{m}'"))


SCENARIOS = {
    f.__name__: f
    for f in (registered_models, versions, stages, archived_versions_share_a_timestamp, aliases, search_models,
              search_versions, model_timestamps, invalid_input, copy_version, fluent)
}
