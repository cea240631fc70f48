"""What the gateway talks to: a workspace, or an Azure ML registry, and their paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from .urls import segment

PROVIDER = "providers/Microsoft.MachineLearningServices"


@dataclass(frozen=True)
class WorkspaceRef:
    subscription_id: str
    resource_group: str
    workspace_name: str

    kind = "workspace"

    @property
    def name(self) -> str:
        return self.workspace_name

    @property
    def arm_path(self) -> str:
        return (
            f"/subscriptions/{segment(self.subscription_id)}"
            f"/resourceGroups/{segment(self.resource_group)}"
            f"/{PROVIDER}/workspaces/{segment(self.workspace_name)}"
        )

    @property
    def asset_prefix(self) -> str:
        """The ``azureml://`` prefix the service uses in ``modelUri`` values of this workspace."""
        return (
            f"azureml://subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/workspaces/{self.workspace_name}"
        )

    @property
    def uri_path(self) -> str:
        """The target part of the plugin's URIs (after ``azureml-registry://``)."""
        group = f"subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
        return f"{group}/workspaces/{self.workspace_name}"


@dataclass(frozen=True)
class RegistryRef:
    """An Azure ML registry. Its name is unique in the cloud (Azure ML finds a registry by name alone, through
    registry discovery), so two references to one registry are equal whether or not they name the subscription
    and resource group, which discovery supplies when they are absent."""

    registry_name: str
    subscription_id: Optional[str] = field(default=None, compare=False)
    resource_group: Optional[str] = field(default=None, compare=False)

    kind = "registry"

    def __hash__(self) -> int:
        return hash(("registry", self.registry_name.lower()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RegistryRef) and other.registry_name.lower() == self.registry_name.lower()

    @property
    def name(self) -> str:
        return self.registry_name

    @property
    def located(self) -> bool:
        return bool(self.subscription_id and self.resource_group)

    @property
    def arm_path(self) -> str:
        if not self.located:
            raise ValueError(f"Registry {self.registry_name!r}: subscription and resource group not known yet")
        return (
            f"/subscriptions/{segment(self.subscription_id or '')}"
            f"/resourceGroups/{segment(self.resource_group or '')}"
            f"/{PROVIDER}/registries/{segment(self.registry_name)}"
        )

    @property
    def asset_prefix(self) -> str:
        """The ``azureml://`` prefix of this registry's asset ids (Azure ML: ``azureml://registries/<name>``)."""
        return f"azureml://registries/{self.registry_name}"

    @property
    def uri_path(self) -> str:
        if self.located:
            group = f"subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            return f"{group}/registries/{self.registry_name}"
        return f"registries/{self.registry_name}"


Target = Union[WorkspaceRef, RegistryRef]
"""Where model assets live: a workspace or a registry."""
