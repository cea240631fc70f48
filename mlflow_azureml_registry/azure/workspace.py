"""Which workspace the gateway talks to, and its ARM paths."""

from __future__ import annotations

from dataclasses import dataclass

from .urls import segment


@dataclass(frozen=True)
class WorkspaceRef:
    subscription_id: str
    resource_group: str
    workspace_name: str

    @property
    def arm_path(self) -> str:
        return (
            f"/subscriptions/{segment(self.subscription_id)}"
            f"/resourceGroups/{segment(self.resource_group)}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{segment(self.workspace_name)}"
        )

    @property
    def asset_prefix(self) -> str:
        """The ``azureml://`` prefix the service uses in ``modelUri`` values of this workspace."""
        return (
            f"azureml://subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/workspaces/{self.workspace_name}"
        )
