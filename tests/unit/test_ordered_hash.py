"""Ranged downloads hash the file in order whatever order its ranges arrive in."""

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlflow_azureml_registry.azure.blob_download import _OrderedHasher


@pytest.mark.parametrize("seed", range(5))
def test_digest_is_the_files_whatever_the_order(tmp_path, seed):
    data = os.urandom(64 * 1024 + 7)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    offsets = list(range(0, len(data), 4096))
    random.Random(seed).shuffle(offsets)
    hasher = _OrderedHasher(path)

    def arrive(offset):
        hasher.written(offset, data[offset:offset + 4096])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(arrive, offsets))
    assert hasher.hexdigest(len(data)) == hashlib.sha256(data).hexdigest()


def test_a_range_that_never_arrived_gives_no_digest(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abcdef")
    hasher = _OrderedHasher(path)
    hasher.written(3, b"def")
    assert hasher.hexdigest(6) is None
