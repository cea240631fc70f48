"""Azure ML model assets <-> MLflow registry entities. Reserved names live here and nowhere else.

What MLflow records about a version that Azure ML has no field for (source, run id, logged-model
id, run link, the registration id of the create protocol) is kept in the version's ``properties``,
which Azure ML treats as write-once facts, under the ``mlflow.`` prefix.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.entities.model_registry.model_version_tag import ModelVersionTag
from mlflow.entities.model_registry.registered_model_alias import RegisteredModelAlias
from mlflow.entities.model_registry.registered_model_tag import RegisteredModelTag

from .stages import mlflow_stage

PROP_SOURCE = "mlflow.source"
PROP_RUN_ID = "mlflow.runId"
PROP_RUN_LINK = "mlflow.runLink"
PROP_MODEL_ID = "mlflow.modelId"
PROP_REGISTRATION_ID = "mlflow.registrationId"
PROP_MANIFEST = "mlflow.manifestSha256"
"""SHA-256 of the per-file SHA-256 manifest stored beside the files; downloads are checked against it."""
PROP_REFERENCED = "mlflow.referencedInPlace"
"""Set on versions whose files stay at a datastore or job-output path (not copied, may change later)."""
RESERVED_PROPERTY_PREFIX = "mlflow."

MODEL_TYPE_MLFLOW = "mlflow_model"
MODEL_TYPE_CUSTOM = "custom_model"

ALIAS_TAG_PREFIX = "mlflow.alias."
"""Aliases live in the model container's tags (``mlflow.alias.<alias>`` = version): one GET resolves
an alias, and one container holds each alias once. They are hidden from MLflow's tag views."""

LAST_UPDATED_TAG = "mlflow.lastUpdated"
"""MLflow's last update of a model or version (epoch milliseconds), kept where Azure ML's ``lastModifiedAt`` says
otherwise. MLflow moves a registered model's last update when its description changes and when a version is
created, transitioned or deleted, and a version's when its description or stage changes; Azure ML moves
``lastModifiedAt`` on every write (tags and aliases too). A write MLflow counts removes the tag, so
``lastModifiedAt`` is right again; a write it does not count stores the time it had. Hidden from MLflow's tags."""

TOUCH = "touch"
"""A write MLflow counts as an update: the resource's last update becomes the time of this write."""
KEEP = "keep"
"""A write MLflow does not count (tags, aliases): the resource keeps its last update."""

Json = dict[str, Any]

_FRACTION = re.compile(r"\.(\d+)")


def to_millis(timestamp: Optional[str]) -> Optional[int]:
    """Azure ``systemData`` timestamps (7-digit fractions, ``+00:00`` or ``Z``) as epoch milliseconds."""
    if not timestamp:
        return None
    text = timestamp.strip().replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def _props(resource: Optional[Json]) -> Json:
    return (resource or {}).get("properties") or {}


def container_tags(container: Json) -> dict[str, str]:
    """All tags of a container, reserved ones included (for writing back)."""
    return dict(_props(container).get("tags") or {})


STAGE_TAG = "mlflow.stage"
"""A registry version's MLflow stage: Azure ML registry versions have no ``stage`` field (recorded, FIDELITY.md)."""
PROP_PROMOTED_FROM = "mlflow.promotedFrom"
"""Azure ML's id of the version a promoted version was copied from."""
RETIRED_TAG = "mlflow.retired"
"""A deleted, empty prompt's container (containers cannot be deleted): epoch ms of the delete; reads treat the
container as absent (see :mod:`.prompts`)."""


PROMPT_REPLACED_TAG = "mlflow.prompt.replacedFileTags"
"""A prompt version's prompt keys (comma-separated) whose value in its files no longer counts: set or deleted
through MLflow since registration (the files cannot change); see :mod:`.prompts`."""


def is_reserved_tag(key: str) -> bool:
    """Tags the plugin keeps for itself (aliases, last update, a registry version's stage, a retired prompt's
    mark, a prompt version's replaced file values): hidden from MLflow, refused as user tags."""
    return key.startswith(ALIAS_TAG_PREFIX) or key in (LAST_UPDATED_TAG, STAGE_TAG, RETIRED_TAG, PROMPT_REPLACED_TAG)


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not is_reserved_tag(k)}


def last_updated(resource: Json) -> Optional[int]:
    """MLflow's last update of a container or version, epoch ms: the stored one, else Azure ML's."""
    stored = (_props(resource).get("tags") or {}).get(LAST_UPDATED_TAG)
    if stored is not None and str(stored).isdigit():
        return int(stored)
    system = resource.get("systemData") or {}
    return to_millis(system.get("lastModifiedAt") or system.get("createdAt"))


def set_last_updated(resource: Json, when: Any) -> None:
    """Before a PUT of ``resource`` (as read): ``TOUCH``, ``KEEP`` or a time in epoch ms (a write that MLflow
    stamps with another resource's time, such as a version's creation on its model)."""
    props = resource.setdefault("properties", {})
    tags = dict(props.get("tags") or {})
    if when == TOUCH:
        tags.pop(LAST_UPDATED_TAG, None)
    else:
        stamp = last_updated(resource) if when == KEEP else when
        if stamp is None:
            tags.pop(LAST_UPDATED_TAG, None)
        else:
            tags[LAST_UPDATED_TAG] = str(int(stamp))
    props["tags"] = tags


def aliases(container: Json) -> dict[str, str]:
    """alias -> version, from the container's reserved tags."""
    return {
        k[len(ALIAS_TAG_PREFIX):]: v for k, v in container_tags(container).items() if k.startswith(ALIAS_TAG_PREFIX)
    }


def alias_tag(alias: str) -> str:
    return ALIAS_TAG_PREFIX + alias


def mlflow_version(name: Any) -> Any:
    """A version number as MLflow's SQL registry hands it to its caller: an ``int`` (its column is an integer;
    ``mlflow server`` writes it as text on the wire). A version made elsewhere whose Azure ML name is not an integer
    in canonical form (``v2``, ``01``) keeps its name (``str``) rather than become another version's number."""
    text = str(name)
    return int(text) if text.isascii() and text.isdigit() and str(int(text)) == text else text


def aliases_for_version(container: Optional[Json], version: Any) -> list[str]:
    if not container:
        return []
    return sorted(a for a, v in aliases(container).items() if v == str(version))


class LazyRegisteredModel(RegisteredModel):
    """A ``RegisteredModel`` whose ``latest_versions`` is fetched on first read.

    MLflow calls ``get_registered_model`` before most operations only to look at tags; computing
    latest versions there would multiply the cost of every call by the model's version pages.
    """

    def __init__(self, *args: Any, load_latest: Optional[Callable[[], list[ModelVersion]]] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._load_latest = load_latest

    @classmethod
    def _properties(cls) -> list[str]:
        return RegisteredModel._properties()

    @property
    def latest_versions(self) -> list[ModelVersion]:
        if self._load_latest is not None:
            loader, self._load_latest = self._load_latest, None
            self._latest_version = loader()
        return self._latest_version

    @latest_versions.setter
    def latest_versions(self, value: list[ModelVersion]) -> None:
        self._load_latest = None
        self._latest_version = value

    def __getstate__(self) -> dict[str, Any]:
        _ = self.latest_versions  # resolve before pickling; the loader holds a live client
        return self.__dict__.copy()


def registered_model(
    container: Json,
    *,
    latest_versions: Optional[list[ModelVersion]] = None,
    load_latest: Optional[Callable[[], list[ModelVersion]]] = None,
) -> RegisteredModel:
    """A container as MLflow's SQL registry answers it in process: ``aliases`` maps alias -> ``int`` version, and
    ``latest_versions`` (given, or loaded on first read) carry no aliases, as MLflow's do."""
    props = _props(container)
    system = container.get("systemData") or {}
    tags = user_tags(container_tags(container))
    kwargs: dict[str, Any] = dict(
        name=container.get("name"),
        creation_timestamp=to_millis(system.get("createdAt")),
        last_updated_timestamp=last_updated(container),
        description=props.get("description"),
        latest_versions=latest_versions or [],
        tags=[RegisteredModelTag(k, v) for k, v in sorted(tags.items())],
        aliases=[RegisteredModelAlias(a, mlflow_version(v)) for a, v in sorted(aliases(container).items())],
    )
    if load_latest is not None:
        return LazyRegisteredModel(load_latest=load_latest, **kwargs)
    return RegisteredModel(**kwargs)


def version_number(resource: Json) -> Optional[int]:
    """The version as an integer; None for versions made elsewhere whose names are not integers in canonical form
    (``v2``, and ``01``: MLflow reads "01" as version 1, so listing it would offer a version no lookup reaches)."""
    number = mlflow_version(resource.get("name"))
    return number if isinstance(number, int) else None


def model_version(resource: Json, model_name: str, aliases: Optional[list[str]] = None) -> ModelVersion:
    """A version resource as MLflow's SQL registry answers it in process: ``version`` an ``int``
    (:func:`mlflow_version`), ``aliases`` those given (MLflow fills them only in single-version answers)."""
    props = _props(resource)
    facts = props.get("properties") or {}
    system = resource.get("systemData") or {}
    tags = user_tags(props.get("tags") or {})
    kwargs: dict[str, Any] = {}
    if facts.get(PROP_MODEL_ID) and _accepts(ModelVersion, "model_id"):
        kwargs["model_id"] = facts.get(PROP_MODEL_ID)
    return ModelVersion(
        name=model_name,
        version=mlflow_version(resource.get("name")),
        creation_timestamp=to_millis(system.get("createdAt")),
        last_updated_timestamp=last_updated(resource),
        description=props.get("description"),
        user_id=system.get("createdBy"),
        current_stage=mlflow_stage(props.get("stage")),
        source=facts.get(PROP_SOURCE) or props.get("modelUri"),
        run_id=facts.get(PROP_RUN_ID) or None,
        status="READY",
        tags=[ModelVersionTag(k, v) for k, v in sorted(tags.items())],
        run_link=facts.get(PROP_RUN_LINK) or None,
        aliases=aliases or [],
        **kwargs,
    )


@functools.cache
def _accepts(cls: type, parameter: str) -> bool:
    """Whether this MLflow's entity takes ``parameter`` (``model_id`` arrived in MLflow 3)."""
    return parameter in inspect.signature(cls.__init__).parameters


def flavors_from_mlmodel(mlmodel: Json) -> Json:
    """``MLmodel`` flavors in the REST shape: ``{flavor: {"data": {key: string}}}``.

    The service accepts only strings as flavor data values; nested values are JSON-encoded.
    """
    flavors: Json = {}
    for flavor, config in (mlmodel.get("flavors") or {}).items():
        data = {}
        for key, value in (config or {}).items():
            data[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        flavors[str(flavor)] = {"data": data}
    return flavors


def new_version_body(
    *,
    model_uri: str,
    model_type: str,
    description: Optional[str],
    tags: dict[str, str],
    facts: dict[str, str],
    flavors: Optional[Json] = None,
) -> Json:
    """The body of the version PUT that creates a version (the service fills ids, stage and timestamps)."""
    props: Json = {
        "description": description,
        "tags": {str(k): str(v) for k, v in tags.items()},
        "properties": {k: v for k, v in facts.items() if v is not None},
        "modelType": model_type,
        "modelUri": model_uri,
        "isAnonymous": False,
        "isArchived": False,
    }
    if flavors:
        props["flavors"] = flavors
    if description is None:
        del props["description"]
    return {"properties": props}


def registration_id(resource: Json) -> Optional[str]:
    return (_props(resource).get("properties") or {}).get(PROP_REGISTRATION_ID)


def version_location(resource: Json, default_workspace: Any) -> Any:
    """Where a version's files are (``modelUri``), with the manifest digest they must match, if any.

    Raises ``uri.InvalidUri`` when the files are not on a workspace datastore.
    """
    from dataclasses import replace

    from .uri import parse_asset_uri

    props = _props(resource)
    location = parse_asset_uri(props.get("modelUri") or "", default_workspace)
    return replace(location, manifest_sha256=(props.get("properties") or {}).get(PROP_MANIFEST) or None)
