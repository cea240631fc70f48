"""The content hash must equal the Azure ML SDK's, so each reuses the other's uploads."""

import os

from azure.ai.ml._utils._asset_utils import get_object_hash

from mlflow_azureml_registry.content import snapshot


def _tree(root):
    (root / "sub").mkdir()
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.pkl").write_bytes(os.urandom(3000))
    (root / "Zeta.txt").write_text("z")
    (root / "alpha.txt").write_text("a")
    (root / "sub" / "weights.bin").write_bytes(os.urandom(5000))
    (root / "empty.txt").write_bytes(b"")


def test_hash_matches_azure_ml_sdk(tmp_path):
    _tree(tmp_path)
    snap = snapshot(tmp_path)
    assert snap.content_hash == get_object_hash(tmp_path)
    assert {f.relative_path for f in snap.files} == {
        "MLmodel",
        "model.pkl",
        "Zeta.txt",
        "alpha.txt",
        "sub/weights.bin",
        "empty.txt",
    }
    assert snap.total_size == sum(os.path.getsize(f.path) for f in snap.files)
    # The SDK marks the first file of the sorted listing as complete.
    assert snap.indicator == "MLmodel"


def test_hash_changes_with_content_and_names(tmp_path):
    _tree(tmp_path)
    before = snapshot(tmp_path).content_hash
    (tmp_path / "alpha.txt").write_text("b")
    changed = snapshot(tmp_path).content_hash
    assert changed != before
    (tmp_path / "alpha.txt").rename(tmp_path / "beta.txt")
    assert snapshot(tmp_path).content_hash not in (before, changed)
