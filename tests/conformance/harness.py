"""Run one registry scenario against two registries and compare what they answer, step by step.

A scenario is a function of a :class:`Registry`: it calls ``r.step(label, call)`` for each registry
call, and the registry records the normalised answer (or the error code and message). The same
scenario runs against the plugin and against MLflow's own SQL registry *through the same path*
(in process, REST through ``mlflow server``, the fluent API, a client with its own URIs); the two
transcripts must be equal, except for the documented by-design differences (``differences.py``).

Names are made unique per run (the local workspace is shared by the test session; live, under the run's prefix)
and normalised back in answers and messages, so both transcripts read the same.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException

from tests.live.mode import name_prefix

_runs = itertools.count()


@dataclass(frozen=True)
class Error:
    """A refused call: MLflow's error code, and its message with run-specific names normalised."""

    code: str
    message: str

    def __repr__(self) -> str:
        return f"Error({self.code}, {self.message[:160]!r})"


@dataclass
class Step:
    label: str
    answer: Any


@dataclass
class Registry:
    """One registry seen through one path: ``client`` is what the scenario calls.

    ``source``/``run_id``: a model folder logged in a run of the tracking store this path's client
    reads (``runs:/<run_id>/model``), so every registry can copy or reference it.
    ``fluent``: the path uses MLflow's global URIs, so ``mlflow.register_model`` and the fluent
    search functions reach this registry too.
    """

    kind: str  # "plugin" or "mlflow"
    client: Any
    source: str
    run_id: str
    fluent: bool = False
    prefix: str = field(default_factory=lambda: f"{name_prefix()}c{next(_runs)}{uuid.uuid4().hex[:6]}")
    steps: list[Step] = field(default_factory=list)

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """A call whose answer is not recorded (set-up), errors raised."""
        return fn(self.client)

    def step(self, label: str, fn: Callable[[Any], Any], *, keep: Optional[Callable[[Any], Any]] = None) -> Any:
        """Call ``fn(client)``; record ``keep(answer)`` (default: the normalised answer) or the error."""
        try:
            answer = fn(self.client)
        except MlflowException as exc:
            # MLflow's REST client puts the code before the server's message: the same answer, read alike.
            message = exc.message.removeprefix(f"{exc.error_code}: ")
            self.steps.append(Step(label, Error(exc.error_code, self.plain(message))))
            return None
        self.steps.append(Step(label, self.normal(keep(answer) if keep else answer)))
        return answer

    def plain(self, text: str) -> str:
        return text.replace(self.prefix, "<p>").replace(self.run_id, "<run>")

    def normal(self, value: Any) -> Any:
        """An answer as compared: run-specific names normalised, timestamps and user ids left out, and every other
        value *with its Python type*. In process, MLflow's SQL registry hands over its entities as they are (``int``
        versions and alias targets, ``bytes`` page tokens, lists); through ``mlflow server`` both registries' answers
        are what MLflow's REST client makes of the wire (text). Nothing is made a string here, and :func:`same`
        tells ``1`` from ``'1'``, ``b'x'`` from ``'x'``, ``[]`` from ``None`` and a list from a tuple."""
        if isinstance(value, RegisteredModel):
            return {
                "name": self.plain(value.name),
                "description": value.description or None,
                "tags": dict(value.tags),
                "aliases": self.normal(value.aliases) if hasattr(value, "aliases") else "<no aliases attribute>",
                "latest_versions": self.normal(value.latest_versions),
            }
        if isinstance(value, ModelVersion):
            return {
                "name": self.plain(value.name),
                "version": value.version,
                "stage": value.current_stage,
                "description": value.description or None,
                "tags": dict(value.tags),
                "aliases": sorted(value.aliases) if isinstance(value.aliases, list) else self.normal(value.aliases),
                "run_id": self.plain(value.run_id) if value.run_id else None,
                "run_link": value.run_link or None,
                "status": value.status,
            }
        if hasattr(value, "token") and isinstance(value, list):  # PagedList
            return {"items": [self.normal(v) for v in value], "token": token_kind(value.token)}
        if isinstance(value, tuple):
            return tuple(self.normal(v) for v in value)
        if isinstance(value, list):
            return [self.normal(v) for v in value]
        if isinstance(value, dict):
            return {k: self.normal(v) for k, v in value.items()}
        if isinstance(value, str):
            return self.plain(value)
        return value


def token_kind(token: Any) -> Optional[str]:
    """A page token as compared: its type (``bytes`` in process from MLflow's SQL store, ``str`` through ``mlflow
    server``), ``"empty <type>"`` for the empty token MLflow's REST client reads when the server sent none, or None
    (in process: no next page). What a token encodes is each registry's own."""
    if token is None:
        return None
    return f"empty {type(token).__name__}" if len(token) == 0 else type(token).__name__


def compare(plugin: Registry, mlflow: Registry, allowed: dict[str, Callable[[Any, Any], bool]]) -> list[str]:
    """The steps whose answers differ, unless ``allowed[label](plugin_answer, mlflow_answer)`` holds.

    Errors compare by code, and by message where MLflow's message must be ours too: ours may add a hint
    after MLflow's words (``ours.startswith(theirs)`` or theirs appears in ours).
    """
    problems = []
    labels = [s.label for s in mlflow.steps]
    if labels != [s.label for s in plugin.steps]:
        return [f"different steps: {labels} vs {[s.label for s in plugin.steps]}"]
    for ours, theirs in zip(plugin.steps, mlflow.steps):
        if same(ours.answer, theirs.answer):
            continue
        check = allowed.get(ours.label)
        if check is not None and check(ours.answer, theirs.answer):
            continue
        problems.append(f"{ours.label}:\n    plugin: {ours.answer!r}\n    mlflow: {theirs.answer!r}")
    return problems


def same(ours: Any, theirs: Any) -> bool:
    """Equal answers of the same Python types all the way down (``1 == '1'`` is false anyway, but ``True == 1``,
    ``1 == 1.0`` and ``[1] == (1,)``-like mixes must not pass either); errors by code and message."""
    if isinstance(ours, Error) and isinstance(theirs, Error):
        return ours.code == theirs.code and same_message(ours.message, theirs.message)
    if type(ours) is not type(theirs):
        return False
    if isinstance(ours, dict):
        return ours.keys() == theirs.keys() and all(same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, (list, tuple)):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs))
    return ours == theirs


def same_message(ours: str, theirs: str) -> bool:
    """MLflow's wording first, our hint after it: equal once both are cut to MLflow's length."""
    theirs_core = re.split(r"(?<=\.)\s", theirs, maxsplit=1)[0]
    return theirs_core in ours
