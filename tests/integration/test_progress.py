"""Progress bars as MLflow's own artifact repositories show them (issue #17).

Downloads are compared with MLflow's SQL registry loading the same 7 files through ``models:/`` (its bar comes
from ``ArtifactRepository.download_artifacts``); uploads with the look of MLflow's cloud repositories
("Uploading artifacts", ``CloudArtifactRepository.log_artifacts``), since no MLflow registry uploads on register.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from mlflow_azureml_registry import prompts
from mlflow_azureml_registry.azure.blobs import BLOCK_SIZE

_BAR = re.compile(r"(Downloading|Uploading) (artifacts|\S+): +100%[^\n\r]*?(\d+(?:\.\d+)?\w*)/(\d+(?:\.\d+)?\w*)")


def _final_bars(text: str) -> dict[str, str]:
    """Bar description -> its last "done/total" at 100%, from tqdm's output (carriage returns and all)."""
    return {f"{m[1]} {m[2]}": f"{m[3]}/{m[4]}" for m in _BAR.finditer(text)}


def _folder(root: Path, count: int, *, big: int = 0) -> Path:
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"file-{i:04d}.txt").write_text(f"{i}\n" * 20)
    if big:
        (root / "weights.bin").write_bytes(os.urandom(big))
    return root


@contextmanager
def _registry(uri: str):
    saved = mlflow.get_registry_uri()
    mlflow.set_registry_uri(uri)
    try:
        yield MlflowClient(registry_uri=uri)
    finally:
        mlflow.set_registry_uri(saved)


def _download_bars(capsys, tmp_path: Path, registry_uri: str, name: str, source: Path) -> dict[str, str]:
    with _registry(registry_uri) as client:
        client.create_registered_model(name)
        client.create_model_version(name, str(source))
        capsys.readouterr()
        dst = tmp_path / f"out-{abs(hash(registry_uri))}"
        dst.mkdir()
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/1", dst_path=str(dst))
        assert len(list(Path(dst).rglob("*.txt"))) == 7
    return _final_bars(capsys.readouterr().err)


def test_a_7_file_download_shows_mlflows_file_bar(workspace, tmp_path, model_name, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    source = _folder(tmp_path / "model", 7)
    theirs = _download_bars(capsys, tmp_path, f"sqlite:///{tmp_path}/registry.db", model_name, source)
    ours = _download_bars(capsys, tmp_path, workspace.registry_uri(), model_name, source)
    assert theirs == {"Downloading artifacts": "7/7"}, theirs
    assert ours == theirs


def test_a_2000_file_upload_shows_a_file_bar(workspace, tmp_path, model_name, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    source = _folder(tmp_path / "many", 2000)
    capsys.readouterr()
    mlflow.register_model(str(source), model_name)
    assert _final_bars(capsys.readouterr().err) == {"Uploading artifacts": "2000/2000"}


def test_a_large_file_gets_a_byte_bar_beside_the_file_bar(workspace, tmp_path, model_name, capsys, monkeypatch):
    """MLflow's byte bar starts at 500 MB; the threshold is lowered (to just above one block) so a few MB show it,
    in MLflow's own bars and ours alike."""
    import mlflow.utils.file_utils as file_utils

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    monkeypatch.setattr(file_utils, "_PROGRESS_BAR_DISPLAY_THRESHOLD", BLOCK_SIZE + 1)
    size = 2 * BLOCK_SIZE + 5
    source = _folder(tmp_path / "model", 2, big=size)
    capsys.readouterr()
    mv = mlflow.register_model(str(source), model_name)
    up = capsys.readouterr().err
    bars = _final_bars(up)
    assert bars.pop("Uploading artifacts") == "3/3"
    assert [k for k in bars] == [f"Uploading {source / 'weights.bin'}"], up[-2000:]
    dst = tmp_path / "out"
    dst.mkdir()
    mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{mv.version}", dst_path=str(dst))
    down = _final_bars(capsys.readouterr().err)
    assert down.pop("Downloading artifacts") == "3/3"
    assert list(down) == ["Downloading weights.bin"]
    assert down["Downloading weights.bin"].endswith("M"), down  # bytes, in MLflow's 1024-based units


def test_bars_are_silent_when_mlflows_progress_setting_is_off(workspace, tmp_path, model_name, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    source = _folder(tmp_path / "model", 7)
    capsys.readouterr()
    mv = mlflow.register_model(str(source), model_name)
    dst = tmp_path / "out"
    dst.mkdir()
    mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/{mv.version}", dst_path=str(dst))
    assert len(list(dst.rglob("*.txt"))) == 7
    err = capsys.readouterr().err
    assert "artifacts" not in err and "%|" not in err, err[-2000:]


@pytest.mark.parametrize("setting", [None, "false"])
def test_a_registry_registration_and_download_report_the_same_way(workspace, tmp_path, model_name, capsys,
                                                                  monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", setting)
    source = _folder(tmp_path / "model", 7)
    with _registry(workspace.azureml_registry_uri()) as client:
        capsys.readouterr()
        client.create_registered_model(model_name)
        client.create_model_version(model_name, str(source))
        dst = tmp_path / "out"
        dst.mkdir()
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_name}/1", dst_path=str(dst))
    bars = _final_bars(capsys.readouterr().err)
    expected = {"Uploading artifacts": "7/7", "Downloading artifacts": "7/7"} if setting is None else {}
    assert bars == expected


@pytest.mark.skipif(not prompts.supported(), reason="MLflow without the prompt API (MLflow 3)")
@pytest.mark.parametrize("target", ["workspace", "registry"])
def test_a_prompt_registration_shows_no_bar_as_in_mlflows_registry(workspace, tmp_path, model_name, capsys,
                                                                   monkeypatch, target):
    """MLflow's SQL registry stores a prompt version as tags: nothing is transferred, no bar. The plugin uploads the
    version's two small files (docs/design.md, *Prompts*) and shows no bar either, while a model registration in the
    same process still shows its own."""
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    uri = workspace.registry_uri() if target == "workspace" else workspace.azureml_registry_uri()
    chat = [{"role": "system", "content": "Be {{style}}."}, {"role": "user", "content": "{{question}}"}]
    shown = {}
    for kind, registry_uri in (("mlflow", f"sqlite:///{tmp_path}/registry.db"), ("plugin", uri)):
        with _registry(registry_uri) as client:
            capsys.readouterr()
            client.register_prompt(model_name, "Hello {{name}}")
            client.register_prompt(model_name, chat, commit_message="chat")
            shown[kind] = capsys.readouterr().err
            assert [v.version for v in client.search_prompt_versions(model_name)] == [2, 1]
    for kind, err in shown.items():
        assert "artifacts" not in err and "%|" not in err, f"{kind}: {err[-2000:]}"
    source = _folder(tmp_path / "model", 3)
    with _registry(uri) as client:
        client.create_registered_model(f"{model_name}-model")
        capsys.readouterr()
        client.create_model_version(f"{model_name}-model", str(source))
        assert _final_bars(capsys.readouterr().err) == {"Uploading artifacts": "3/3"}
