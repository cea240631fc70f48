"""MLflow 3's prompt registry on the plugin answers as on MLflow's own SQL registry (issue #18), in process and
through ``mlflow server``, on a workspace and on an Azure ML registry.

Differences are allowed only where ``differences.py`` lists them, each with its reason (the same table is in
docs/design.md). MLflow 2.x has no prompt API: the module is skipped there (the plugin's gate is the same feature
test, ``prompts.supported()``), and the model tests show the prompt tag stays an ordinary tag.
"""

from __future__ import annotations

import pytest

from mlflow_azureml_registry import prompts

if not prompts.supported():
    pytest.skip("this MLflow has no prompt registry (MLflow 3's AbstractStore.create_prompt_version)",
                allow_module_level=True)

from .differences import allowed  # noqa: E402
from .harness import compare  # noqa: E402
from .prompt_scenarios import SCENARIOS  # noqa: E402

PROMPT_PATHS = ("global", "rest", "registry", "registry-rest")
"""In process (MLflow's global URIs) and through ``mlflow server``, each on a workspace and on a registry."""


@pytest.mark.parametrize("path_pair", PROMPT_PATHS, indirect=True)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_prompt_answers_as_mlflow(path_pair, scenario):
    transcripts = {}
    for kind in ("mlflow", "plugin"):
        with path_pair[kind]() as registry:
            SCENARIOS[scenario](registry)
        transcripts[kind] = registry
    problems = compare(transcripts["plugin"], transcripts["mlflow"], allowed(scenario))
    assert not problems, "\n".join(problems)


def test_prompt_servers_logged_no_traceback(servers):
    """After the scenarios above (pytest runs this file in order): the servers' logs hold no traceback, the
    prompt calls, refusals and the MLflow client's background experiment tagging included."""
    from tests.servers import plugin_tracebacks

    for key, (server, _) in servers.items():
        assert plugin_tracebacks(server.log()) == [], key
