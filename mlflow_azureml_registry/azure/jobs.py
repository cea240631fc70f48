"""Azure ML jobs: only what resolving a job output to its storage path needs."""

from __future__ import annotations

from typing import Any

from .arm import ArmClient
from .urls import segment
from .workspace import WorkspaceRef


class Jobs:
    def __init__(self, arm: ArmClient, workspace: WorkspaceRef) -> None:
        self._arm = arm
        self.workspace = workspace

    def get(self, name: str) -> dict[str, Any]:
        path = f"{self.workspace.arm_path}/jobs/{segment(name)}"
        return self._arm.request("GET", path, what=f"GET job {name!r}").body
