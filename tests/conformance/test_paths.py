"""Every registry scenario, through every path, answers as MLflow's own SQL registry answers.

Differences are allowed only where ``differences.py`` lists them, each with its reason (the same table
is in docs/design.md).
"""

from __future__ import annotations

import pytest

from tests.servers import plugin_tracebacks

from .conftest import PATHS
from .differences import DIFFERENCES, allowed
from .harness import compare
from .scenarios import SCENARIOS

IN_PROCESS = ("global", "own-uris", "registry")
"""Paths where the client calls the store in its own process: answers are the store's Python objects. Elsewhere
they are what MLflow's REST client makes of ``mlflow server``'s JSON."""

TYPED_STEPS = {"versions": ("create-1", "version"), "search_models": ("max-results-zero", "token")}
"""A step per scenario whose answer shows the path's types: (label, key)."""


@pytest.mark.parametrize("path_pair", PATHS, indirect=True)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_answers_as_mlflow(request, path_pair, scenario):
    transcripts = {}
    for kind in ("mlflow", "plugin"):
        with path_pair[kind]() as registry:
            SCENARIOS[scenario](registry)
        transcripts[kind] = registry
    problems = compare(transcripts["plugin"], transcripts["mlflow"], allowed(scenario))
    assert not problems, "\n".join(problems)
    if scenario in TYPED_STEPS:  # the transcripts keep types: MLflow's own answer has the path's
        label, key = TYPED_STEPS[scenario]
        (answer,) = [s.answer for s in transcripts["mlflow"].steps if s.label == label]
        in_process = request.node.callspec.params["path_pair"] in IN_PROCESS
        expected = {"version": ("int", "str"), "token": ("bytes", "str")}[key][0 if in_process else 1]
        got = type(answer[key]).__name__ if key == "version" else answer[key]  # a token is kept as its type's name
        assert got == expected, (label, answer)


def test_every_difference_is_in_the_design_table():
    """docs/design.md's table of differences and differences.py name the same rows."""
    import re
    from pathlib import Path

    design = (Path(__file__).resolve().parents[2] / "docs" / "design.md").read_text()
    section = design.split("## Differences from MLflow's registry", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M)
    assert documented == [d.id for d in DIFFERENCES]


def test_servers_logged_no_traceback(servers):
    """After every scenario above (pytest runs this file in order): the servers' logs hold no traceback,
    webhook delivery after each registry write included."""
    for key, (server, _) in servers.items():
        assert plugin_tracebacks(server.log()) == [], key
