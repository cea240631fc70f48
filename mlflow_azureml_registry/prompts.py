"""MLflow 3's prompt registry on Azure ML model assets: where a prompt version's template lives, and what
"delete a prompt" means where containers cannot be deleted.

MLflow 3 implements every prompt method once, in ``AbstractStore``, on registered models and versions: a prompt is
a model tagged ``mlflow.prompt.is_prompt=true``, its template the version tag ``mlflow.prompt.text``
(docs/research-prompts.md §1). The store inherits those methods; this module is what its model methods do
differently for prompts:

- **Storage.** A prompt version (the prompt tag and one of MLflow's placeholder sources) gets a folder through the
  create protocol, like any version: ``prompt/template.txt`` (a text prompt) or ``prompt/template.json`` (a chat
  prompt: MLflow's JSON), and ``prompt/prompt.json`` with every MLflow prompt key as registered. The template and the
  other ``_mlflow_prompt_*`` keys are also version tags when each fits :data:`INLINE_LIMIT`; a key that does not is
  named in the write-once property :data:`PROP_FILE_TAGS` and filled from ``prompt/prompt.json`` on every read
  (:func:`fill`, :func:`fill_all`), so MLflow always reads it where it looks. No template is ever cut short. The
  files keep the prompt as registered (they cannot change): a value set or deleted later lives in the version's tags,
  which win, and ``mapping.PROMPT_REPLACED_TAG`` names the file-held keys whose file value no longer counts
  (:func:`replacing`).
- **Delete.** Azure ML containers cannot be deleted (the support matrix). A prompt with versions is refused in
  MLflow's own Unity Catalog words; an empty one is *retired* (``mapping.RETIRED_TAG``): the model-asset layer then
  treats it as absent, and creating the name again revives it (its version numbers continue).

Nothing here is used on an MLflow without the prompt API (:func:`supported`): MLflow 2.16 treats the prompt tag as
an ordinary tag, and so does the plugin there.
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

from . import concurrency, mapping, progress
from .assets import NewVersion
from .sources import LocalModel
from .unsupported import DELETE_MODEL_MESSAGE, PROMPT_TAG, refuse

_logger = logging.getLogger(__name__)

Json = dict[str, Any]

TEXT_KEY = "mlflow.prompt.text"
TYPE_KEY = "_mlflow_prompt_type"
RESPONSE_FORMAT_KEY = "_mlflow_prompt_response_format"
MODEL_CONFIG_KEY = "_mlflow_prompt_model_config"
PROMPT_KEYS = (PROMPT_TAG, TYPE_KEY, TEXT_KEY, RESPONSE_FORMAT_KEY, MODEL_CONFIG_KEY)
"""The version tags MLflow writes for a prompt (``mlflow/prompt/constants.py``), all kept in ``prompt.json``."""
SIZED_KEYS = (TEXT_KEY, RESPONSE_FORMAT_KEY, MODEL_CONFIG_KEY)
"""The keys whose values can be long: inline only up to :data:`INLINE_LIMIT`, else in the file only."""
INLINE_LIMIT = 1_000
"""Characters of a prompt key kept inline as a version tag. Azure ML documents no limit on model-asset tags; the only
published tag-value limit is 1,000 for runs and experiments (FIDELITY.md, *assumed* to be safe for models). A store
constant, not a setting, so that equal inputs give equal stored shapes."""
PROP_FILE_TAGS = "mlflow.prompt.fileTags"
"""Write-once version property: the prompt keys held only in ``prompt/prompt.json`` (comma-separated)."""
PLACEHOLDER_SOURCES = ("dummy-source", "prompt-template")
"""The sources MLflow gives prompt versions (``mlflow/prompt/constants.py``); ``mlflow server`` accepts only these."""
DETAILS_FILE = "prompt/prompt.json"
_UNREADABLE = "_mlflowPromptFileUnreadable"  # marks a version whose file could not be read (in memory only)
HAS_VERSIONS_MESSAGE = (
    "Cannot delete prompt '{name}' because it still has undeleted versions. Please delete all versions first using "
    "delete_prompt_version(), then delete the prompt. (Azure ML model containers cannot be deleted: once it has no "
    "versions, delete_prompt retires the prompt, and registering the name again revives it; its version numbers "
    "continue.)"
)


def supported() -> bool:
    """Whether the installed MLflow has the prompt API (MLflow 3's ``AbstractStore.create_prompt_version``)."""
    from mlflow.store.model_registry.abstract_store import AbstractStore

    return hasattr(AbstractStore, "create_prompt_version")


def is_prompt(tags: dict[str, str]) -> bool:
    """A model or version tag map that marks a prompt (``mlflow.prompt.is_prompt`` = ``true``, any case)."""
    return str(tags.get(PROMPT_TAG, "")).lower() == "true"


def is_prompt_version(source: Any, tags: dict[str, str]) -> bool:
    """A version MLflow creates for a prompt: the prompt tag and a placeholder source, on an MLflow with prompts.
    Such a version has no files of its own; :func:`create_version` writes its folder."""
    return source in PLACEHOLDER_SOURCES and is_prompt(tags) and supported()


def _held_keys(resource: Json) -> list[str]:
    """The prompt keys a stored version keeps only in its ``prompt.json`` (:data:`PROP_FILE_TAGS`)."""
    facts = (resource.get("properties") or {}).get("properties") or {}
    return [k for k in str(facts.get(PROP_FILE_TAGS) or "").split(",") if k]


def _replaced(resource: Json) -> set[str]:
    """The file-held keys whose file value no longer counts (set or deleted since registration:
    ``mapping.PROMPT_REPLACED_TAG``)."""
    tags = (resource.get("properties") or {}).get("tags") or {}
    return {k for k in str(tags.get(mapping.PROMPT_REPLACED_TAG) or "").split(",") if k}


def replacing(resource: Json, key: str) -> dict[str, str]:
    """The marker tag to write with a write or delete of ``key`` on a version that keeps ``key`` in its files: from
    then on the file's value no longer counts (the files cannot change), so a later read answers the tag, or nothing
    once it is deleted, as MLflow's SQL registry does. Empty for any other key or version."""
    if key not in _held_keys(resource):
        return {}
    return {mapping.PROMPT_REPLACED_TAG: ",".join(sorted(_replaced(resource) | {key}))}


def _with_tags(resource: Json, extra: dict[str, str]) -> Json:
    """A copy of ``resource`` whose tags also hold ``extra`` (its own tags win)."""
    result = copy.copy(resource)
    props = dict(resource.get("properties") or {})
    props["tags"] = {**extra, **(props.get("tags") or {})}
    result["properties"] = props
    return result


def create_version(
    assets: Any, name: str, tags: dict[str, str], description: Optional[str], facts: dict[str, Optional[str]]
) -> Json:
    """Create a prompt version from its tags (MLflow's, validated) through the create protocol of ``assets`` (a
    workspace's or registry's model-asset layer): the folder of the module docstring, uploaded content-addressed
    with no progress bar (MLflow's registry, which uploads nothing for a prompt, shows none), then the version.
    Returns the version as stored, its tags completed with the file-held keys.

    Raises what ``create_from_folder`` raises (``RESOURCE_DOES_NOT_EXIST`` when the prompt is gone, ...)."""
    held = [k for k in SIZED_KEYS if len(tags.get(k) or "") > INLINE_LIMIT]
    inline = {k: v for k, v in tags.items() if k not in held}
    facts = {**facts, PROP_FILE_TAGS: ",".join(held) or None}
    details = {k: tags[k] for k in PROMPT_KEYS if k in tags}
    with tempfile.TemporaryDirectory(prefix="mlflow-prompt-") as tmp:
        root = Path(tmp) / name
        folder = root / "prompt"
        folder.mkdir(parents=True)
        template = "template.json" if tags.get(TYPE_KEY) == "chat" else "template.txt"
        (folder / template).write_text(tags.get(TEXT_KEY, ""), encoding="utf-8")
        (folder / "prompt.json").write_text(
            json.dumps(details, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
        )
        with progress.quiet():  # two small files, which MLflow's own registry shows no bar for
            stored = assets.create_from_folder(name, LocalModel(root, name), NewVersion(description, inline, facts))
    return _with_tags(stored, {k: tags[k] for k in held})


def fill(assets: Any, name: str, resource: Json, *, strict: bool = True) -> Json:
    """``resource`` with the prompt keys it keeps only in ``prompt/prompt.json`` filled into its tags (a copy; one
    file read), or ``resource`` itself when it keeps none.

    When the file is gone or unreadable (changed outside MLflow): ``strict`` raises ``INTERNAL_ERROR`` saying so (a
    read of that version); otherwise a warning is logged and the version is answered without those keys (a listing:
    one damaged prompt must not break every search of the workspace; MLflow then says the prompt has no text)."""
    if resource.get(_UNREADABLE):
        return resource
    tags = (resource.get("properties") or {}).get("tags") or {}
    missing = [k for k in _held_keys(resource) if k not in tags and k not in _replaced(resource)]
    if not missing:
        return resource
    raw = assets.read_file(name, resource, DETAILS_FILE)
    try:
        details = json.loads(raw.decode("utf-8")) if raw is not None else None
    except ValueError:
        details = None
    if not isinstance(details, dict) or any(not isinstance(details.get(k), str) for k in missing):
        message = (
            f"Prompt version {name}/{resource.get('name')} keeps {', '.join(missing)} in its file {DETAILS_FILE}, "
            "which is missing or unreadable (changed outside MLflow?). Register the prompt version again."
        )
        if strict:
            raise MlflowException(message, error_code=INTERNAL_ERROR)
        _logger.warning(message)
        return {**resource, _UNREADABLE: True}
    return _with_tags(resource, {k: details[k] for k in missing})


def fill_all(assets: Any, name: str, resources: list[Json]) -> list[Json]:
    """:func:`fill` (not strict) for many versions of one model, the file reads sent together (:mod:`.concurrency`)."""
    if not any(set(_held_keys(r)) - _replaced(r) for r in resources):
        return resources
    return concurrency.together(*[lambda r=r: fill(assets, name, r, strict=False) for r in resources])


def check_tag_write(name: str, resource: Json, key: str, value: str) -> None:
    """Refuse, before the PUT, a long value for a prompt key of a prompt version: such values live in the version's
    files, which cannot change once the version exists (``modelUri`` is immutable, recorded). MLflow's SQL registry
    accepts it (a documented difference). Without MLflow's prompt API these are ordinary tags: nothing is refused."""
    tags = (resource.get("properties") or {}).get("tags") or {}
    if key not in SIZED_KEYS or len(value) <= INLINE_LIMIT or not supported():
        return
    if is_prompt(tags) or _held_keys(resource):
        raise MlflowException(
            f"Tag {key!r} of prompt version {name}/{resource.get('name')} is {len(value):,} characters long. On Azure "
            f"ML, prompt values over {INLINE_LIMIT:,} characters are kept in the version's files, which cannot change "
            "once the version exists. Register a new prompt version with it instead (mlflow.genai.register_prompt).",
            error_code=INVALID_PARAMETER_VALUE,
        )


def delete(assets: Any, name: str) -> None:
    """MLflow's ``delete_registered_model`` (and so ``delete_prompt``) on Azure ML.

    - a model: ``NOT_IMPLEMENTED``, as before (containers cannot be deleted; delete its versions instead);
    - a prompt with versions: ``INVALID_PARAMETER_VALUE`` in MLflow's Unity Catalog words, plus why and what to do;
    - an empty prompt: retired under the model's write lease, with one container PUT. Its user tags, aliases,
      experiment ids and description go; the prompt tag stays, so the name stays out of model searches; the
      model-asset layer treats it as absent (``RESOURCE_DOES_NOT_EXIST``) until the name is created again.

    This is also what makes ``register_prompt``'s rollback of a failed first version work (it deletes the model).
    A missing name: ``RESOURCE_DOES_NOT_EXIST``."""
    if not is_prompt(mapping.container_tags(assets.container(name))):
        refuse(DELETE_MODEL_MESSAGE.format(name=name))
    with assets.writing(name):
        container = assets.container(name)
        if next(iter(assets.versions(name)), None) is not None:
            raise MlflowException(HAS_VERSIONS_MESSAGE.format(name=name), error_code=INVALID_PARAMETER_VALUE)
        props = container.setdefault("properties", {})
        props["tags"] = {PROMPT_TAG: "true", mapping.RETIRED_TAG: str(int(time.time() * 1000))}
        props["description"] = None
        assets.put_container(name, container, mapping.TOUCH, answer=False)


def name_taken(name: str, existing: Json, tags: dict[str, str]) -> Optional[MlflowException]:
    """MLflow's answer to creating a taken name when a prompt is involved (its ``handle_resource_already_exist_error``:
    "... the name is already taken by a prompt ..."), or None on an MLflow without it."""
    try:
        from mlflow.prompt.registry_utils import handle_resource_already_exist_error
    except ImportError:
        return None
    try:
        handle_resource_already_exist_error(name, is_prompt(mapping.container_tags(existing)), is_prompt(tags))
    except MlflowException as exc:
        return exc
    return None
