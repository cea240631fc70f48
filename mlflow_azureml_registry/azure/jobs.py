"""Azure ML jobs: only what resolving a job output to its storage path needs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .arm import ArmClient
from .workspace import WorkspaceRef


class Jobs:
    def __init__(self, arm: ArmClient, workspace: WorkspaceRef) -> None:
        self._arm = arm
        self.workspace = workspace

    def get(self, name: str) -> dict[str, Any]:
        path = f"{self.workspace.arm_path}/jobs/{quote(name, safe='')}"
        return self._arm.request("GET", path, what=f"GET job {name!r}").body
