"""The content hash must equal the Azure ML SDK's, so each reuses the other's uploads; the hash cache must
never hand back a hash for content that is not on disk."""

import dataclasses
import hashlib
import json
import os
import zlib

import pytest
from azure.ai.ml._utils._asset_utils import get_object_hash

from mlflow_azureml_registry import content, settings
from mlflow_azureml_registry.content import (
    INLINE_DIGEST_MAX,
    FileChangedError,
    HashCache,
    complete_digests,
    default_cache,
    remember,
    snapshot,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own cache directory (never the user's)."""
    monkeypatch.setenv(settings.HASH_CACHE_DIR, str(tmp_path_factory.mktemp("hash-cache")))
    monkeypatch.delenv(settings.HASH_CACHE, raising=False)


@pytest.fixture
def settled(monkeypatch):
    """Files written by the test count as settled (the cache's racy-write window is 2 s otherwise)."""
    monkeypatch.setattr(content, "_RACY_NS", 0)


def _tree(root):
    (root / "sub").mkdir()
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "model.pkl").write_bytes(os.urandom(3000))
    (root / "Zeta.txt").write_text("z")
    (root / "alpha.txt").write_text("a")
    (root / "sub" / "weights.bin").write_bytes(os.urandom(5000))
    (root / "empty.txt").write_bytes(b"")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def test_hash_matches_the_sdk_with_large_files_empty_folders_and_links(tmp_path):
    _tree(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024 + 17))
    (tmp_path / "nothing-here").mkdir()
    (tmp_path / "link.bin").symlink_to(tmp_path / "data" / "big.bin")
    assert snapshot(tmp_path).content_hash == get_object_hash(tmp_path)


def test_hash_changes_with_content_and_names(tmp_path):
    _tree(tmp_path)
    before = snapshot(tmp_path).content_hash
    (tmp_path / "alpha.txt").write_text("b")
    changed = snapshot(tmp_path).content_hash
    assert changed != before
    (tmp_path / "alpha.txt").rename(tmp_path / "beta.txt")
    assert snapshot(tmp_path).content_hash not in (before, changed)


@pytest.mark.parametrize("large_size", [
    INLINE_DIGEST_MAX + 1,
    content._LARGE_CHUNK - 1, content._LARGE_CHUNK, content._LARGE_CHUNK + 1,  # one buffer, then the other
    2 * content._LARGE_CHUNK, 2 * content._LARGE_CHUNK + 1,  # back to the first buffer
    5 * content._LARGE_CHUNK + 12345,
])
def test_every_file_gets_its_sha256_and_large_ones_the_crc32_their_upload_checks(tmp_path, large_size):
    """One read gives the content hash, each file's own SHA-256 and, for large files, the CRC-32 of the bytes
    read (two alternating buffers, the own hashes in a helper thread): all as if each were computed alone."""
    (tmp_path / "small.bin").write_bytes(os.urandom(INLINE_DIGEST_MAX))
    (tmp_path / "large.bin").write_bytes(os.urandom(large_size))
    (tmp_path / "z-large.bin").write_bytes(os.urandom(INLINE_DIGEST_MAX + 7))  # the helper serves each file
    snap = snapshot(tmp_path, cache=None)
    assert snap.content_hash == get_object_hash(tmp_path)
    by_name = {f.relative_path: f for f in snap.files}
    assert {name: f.sha256 for name, f in by_name.items()} == {
        name: _sha(tmp_path / name) for name in ("small.bin", "large.bin", "z-large.bin")}
    assert by_name["small.bin"].crc32 is None  # its kept bytes, or a fresh read, are hashed again when sent
    for name in ("large.bin", "z-large.bin"):
        assert by_name[name].crc32 == zlib.crc32((tmp_path / name).read_bytes())
    assert snap.complete
    manifest = json.loads(snap.manifest())
    assert manifest["files"]["large.bin"] == {"sha256": _sha(tmp_path / "large.bin"), "size": large_size}


def test_a_snapshot_without_some_digests_is_completed_by_reading_them(tmp_path):
    """A snapshot whose large files lack their SHA-256 (from an older hash cache) is completed before use."""
    (tmp_path / "small.bin").write_bytes(os.urandom(100))
    (tmp_path / "large.bin").write_bytes(os.urandom(INLINE_DIGEST_MAX + 1))
    full = snapshot(tmp_path, cache=None)
    partial = dataclasses.replace(full, files=tuple(
        dataclasses.replace(f, sha256=None, crc32=None) if f.relative_path == "large.bin" else f
        for f in full.files))
    assert not partial.complete
    with pytest.raises(ValueError):
        partial.manifest()
    completed = complete_digests(partial, cache=None)
    assert [(f.relative_path, f.sha256) for f in completed.files] == [
        (f.relative_path, f.sha256) for f in full.files]


def test_small_files_bytes_are_kept_for_the_upload_up_to_a_budget(tmp_path, monkeypatch):
    """The upload sends the very bytes the content hash read (no second read), within a memory budget."""
    monkeypatch.setattr(content, "KEPT_BYTES_MAX", 5000)
    (tmp_path / "a.bin").write_bytes(os.urandom(3000))
    (tmp_path / "b.bin").write_bytes(os.urandom(3000))  # over the budget once a.bin is kept
    (tmp_path / "c.bin").write_bytes(os.urandom(2000))
    (tmp_path / "large.bin").write_bytes(os.urandom(INLINE_DIGEST_MAX + 1))
    snap = snapshot(tmp_path, cache=None)
    assert snap.contents == {name: (tmp_path / name).read_bytes() for name in ("a.bin", "c.bin")}
    by_name = {f.relative_path: f for f in snap.files}
    for name, data in snap.contents.items():
        assert hashlib.sha256(data).hexdigest() == by_name[name].sha256
    assert snap.without_contents().contents == {}
    assert snap.without_contents() == snap  # the kept bytes are not part of what a snapshot is


def test_a_digest_that_differs_from_the_one_read_means_the_file_changed(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    snap = snapshot(tmp_path)
    with pytest.raises(FileChangedError):
        snap.with_digests({"a.txt": "0" * 64})


def test_changed_files_are_detected_by_size_and_times(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    snap = snapshot(tmp_path)
    assert snap.changed_files() == []
    (tmp_path / "a.txt").write_text("bb")
    assert [f.relative_path for f in snap.changed_files()] == ["a.txt"]


def test_unchanged_folder_is_not_read_again(tmp_path, settled, monkeypatch):
    _tree(tmp_path)
    (tmp_path / "big.bin").write_bytes(os.urandom(INLINE_DIGEST_MAX * 3))
    first = complete_digests(snapshot(tmp_path))
    assert not first.from_cache

    def no_reading(*args, **kwargs):
        raise AssertionError("a cached folder must not be read")

    monkeypatch.setattr(content, "open", no_reading, raising=False)
    again = snapshot(tmp_path)
    assert again.from_cache
    assert again.content_hash == first.content_hash == get_object_hash(tmp_path)
    assert again.files == first.files
    assert again.manifest() == first.manifest()


@pytest.mark.parametrize("change", ["same size and times", "added", "removed", "renamed", "new folder"])
def test_any_change_is_a_cache_miss(tmp_path, settled, change):
    _tree(tmp_path)
    remember(complete_digests(snapshot(tmp_path)))
    target = tmp_path / "model.pkl"
    if change == "same size and times":
        before = os.stat(target)
        target.write_bytes(os.urandom(3000))  # same size; the times are put back, only ctime moves
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif change == "added":
        (tmp_path / "extra.txt").write_text("x")
    elif change == "removed":
        target.unlink()
    elif change == "renamed":
        target.rename(tmp_path / "model2.pkl")
    else:
        (tmp_path / "sub" / "inner").mkdir()
    snap = snapshot(tmp_path)
    assert not snap.from_cache
    assert snap.content_hash == get_object_hash(tmp_path)


def test_recently_written_files_are_not_cached(tmp_path):
    """Written within 2 s of hashing: a later write in the same timestamp tick would go unnoticed."""
    _tree(tmp_path)
    remember(complete_digests(snapshot(tmp_path)))
    assert not snapshot(tmp_path).from_cache


@pytest.mark.parametrize(
    "garbage",
    [b"not json", b"[]", b'{"format": 1}', None],
)
def test_a_damaged_cache_entry_is_a_miss(tmp_path, settled, garbage):
    _tree(tmp_path)
    cache = default_cache()
    remember(complete_digests(snapshot(tmp_path)))
    (entry,) = cache.directory.glob("*.json")
    if garbage is None:  # right shape, wrong digest type
        data = json.loads(entry.read_text())
        data["content_hash"] = 42
        garbage = json.dumps(data).encode()
    entry.write_bytes(garbage)
    snap = snapshot(tmp_path)
    assert not snap.from_cache and snap.content_hash == get_object_hash(tmp_path)


def test_a_cache_directory_others_can_write_is_not_used(tmp_path, settled):
    folder = tmp_path / "model"
    folder.mkdir()
    _tree(folder)
    shared = tmp_path / "shared-cache"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    cache = HashCache(shared)
    remember(complete_digests(snapshot(folder, cache=cache)), cache=cache)
    assert list(shared.iterdir()) == []
    assert not snapshot(folder, cache=cache).from_cache


def test_cache_can_be_turned_off(tmp_path, settled, monkeypatch):
    monkeypatch.setenv(settings.HASH_CACHE, "false")
    assert default_cache() is None
    _tree(tmp_path)
    remember(complete_digests(snapshot(tmp_path)))
    assert not snapshot(tmp_path).from_cache
