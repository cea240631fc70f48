"""The model-asset layer of a workspace or a registry, for a target named by a URI."""

from __future__ import annotations

from typing import Any

from .azure.workspace import RegistryRef, Target


def assets_for(target: Target) -> Any:
    """``WorkspaceAssets`` or ``RegistryAssets``: the same interface (``assets.ModelAssets`` plus ``files``,
    ``download_uri``, ``open_files``, ``can_reference``, ``create_from_folder``, ``create_in_place``)."""
    if isinstance(target, RegistryRef):
        from .registry_assets import RegistryAssets

        return RegistryAssets(target)
    from .workspace_assets import WorkspaceAssets

    return WorkspaceAssets(target)
