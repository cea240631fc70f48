"""Downloaded blobs land under the destination folder only, whatever their names or the folder's symlinks say."""

import pytest

from mlflow_azureml_registry.azure.blobs import Destination
from mlflow_azureml_registry.azure.errors import UnsafeBlobName


def test_names_inside_are_joined_and_directories_resolved_once(tmp_path):
    destination = Destination(tmp_path)
    assert destination.join("a/b/../c.txt") == (tmp_path / "a" / "c.txt").resolve()
    assert destination.join("a/d.txt") == (tmp_path / "a" / "d.txt").resolve()
    assert destination.join("MLmodel") == (tmp_path / "MLmodel").resolve()


def test_existing_symlinks_that_lead_outside_are_refused(tmp_path):
    inside, outside = tmp_path / "dest", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "sub").symlink_to(outside, target_is_directory=True)
    (inside / "file.txt").symlink_to(outside / "file.txt")
    destination = Destination(inside)
    for name in ("sub/weights.bin", "file.txt", "../elsewhere/x", "/etc/passwd"):
        with pytest.raises(UnsafeBlobName, match="outside"):
            destination.join(name)


def test_symlinks_that_stay_inside_are_followed(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert Destination(tmp_path).join("alias/x.bin") == (tmp_path / "real" / "x.bin").resolve()
