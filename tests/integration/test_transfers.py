"""Large files move as parallel blocks and ranges; each file's SHA-256 comes from the bytes moved; re-registering
unchanged files reads nothing; a file changed mid-way is an error, never a wrong upload."""

from __future__ import annotations

import hashlib
import os
import uuid
import zlib
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import content, settings
from mlflow_azureml_registry.azure.blobs import DOWNLOAD_RANGE_SIZE, UPLOAD_BLOCK_SIZE, BlobFolder, UploadItem
from mlflow_azureml_registry.azure.errors import AzureMLError, IntegrityError

from ..conftest import files_of


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def container(workspace):
    datastore = workspace.datastore("local-ws")
    return workspace.blob_service(datastore["accountName"]).get_container_client(datastore["containerName"])


@pytest.fixture
def blobs(container):
    return BlobFolder(container, concurrency=4)


class _Recorder:
    """A ``blobs.Progress`` that records what a transfer reports: files completed, and each large file's bytes."""

    def __init__(self) -> None:
        self.files = 0
        self.large: dict[str, list[int]] = {}

    def file_done(self) -> None:
        self.files += 1

    @contextmanager
    def large_file(self, name: str, size: int):
        moved = self.large.setdefault(f"{name}:{size}", [])
        yield moved.append


@pytest.fixture
def prefix() -> str:
    return f"test-transfers/{uuid.uuid4().hex}"


@pytest.fixture
def big(tmp_path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3 * max(UPLOAD_BLOCK_SIZE, DOWNLOAD_RANGE_SIZE) + 123))
    return path


def test_upload_hashes_the_bytes_sent_and_download_verifies_them(blobs, container, prefix, big, tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("hello")
    moved = _Recorder()
    digests = blobs.upload_files(
        [
            UploadItem(big, f"{prefix}/big.bin", big.stat().st_size),
            UploadItem(small, f"{prefix}/small.txt", 5, _sha(b"hello")),
        ],
        progress=moved,
    )
    assert digests == {f"{prefix}/big.bin": _sha(big.read_bytes()), f"{prefix}/small.txt": _sha(b"hello")}
    size = big.stat().st_size
    assert moved.files == 2 and {k: sum(v) for k, v in moved.large.items()} == {f"{big}:{size}": size}
    assert container.download_blob(f"{prefix}/big.bin").readall() == big.read_bytes()

    out = tmp_path / "out"
    moved = _Recorder()
    blobs.download_files(
        [(f"{prefix}/big.bin", big.stat().st_size, out / "big.bin"), (f"{prefix}/small.txt", 5, out / "s.txt")],
        expected_sha256=digests,
        progress=moved,
    )
    assert (out / "big.bin").read_bytes() == big.read_bytes()
    assert (out / "s.txt").read_text() == "hello"
    assert moved.files == 2 and {k: sum(v) for k, v in moved.large.items()} == {f"big.bin:{size}": size}


@pytest.mark.parametrize("how", ["size", "sha256"])
def test_a_file_that_is_not_the_one_listed_is_not_uploaded(blobs, container, prefix, big, how):
    size, sha = big.stat().st_size, None
    if how == "size":
        size -= 1
    else:
        sha = "0" * 64
    with pytest.raises(IntegrityError, match="changed while it was being uploaded"):
        blobs.upload_files([UploadItem(big, f"{prefix}/big.bin", size, sha)])
    assert list(container.list_blobs(name_starts_with=prefix)) == []  # no block list was committed


@pytest.mark.parametrize("how", ["size", "crc32", "same size, other bytes"])
def test_a_large_file_checked_by_crc32_that_is_not_the_one_hashed_is_not_uploaded(
        blobs, container, prefix, big, how):
    """With the SHA-256 and CRC-32 of the hashing read given, the upload checks the bytes it sends by CRC-32."""
    data = big.read_bytes()
    size, sha, crc = len(data), _sha(data), zlib.crc32(data)
    if how == "size":
        size -= 1
    elif how == "crc32":
        crc ^= 1
    else:  # written between the hashing read and the upload, in place
        with open(big, "r+b") as handle:
            handle.seek(len(data) // 2)
            handle.write(bytes([data[len(data) // 2] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="changed while it was being uploaded"):
        blobs.upload_files([UploadItem(big, f"{prefix}/big.bin", size, sha, None, crc)])
    assert list(container.list_blobs(name_starts_with=prefix)) == []  # no block list was committed


def test_a_large_file_checked_by_crc32_reports_the_sha256_it_was_given(blobs, container, prefix, big):
    data = big.read_bytes()
    digests = blobs.upload_files([UploadItem(big, f"{prefix}/big.bin", len(data), _sha(data), None, zlib.crc32(data))])
    assert digests == {f"{prefix}/big.bin": _sha(data)}
    assert container.download_blob(f"{prefix}/big.bin").readall() == data


class _Overtaken(_Recorder):
    """Once the first block is staged, another upload of the same file commits the same blob (two registrations of
    one folder at once): committing discards our staged blocks, so our commit meets InvalidBlockList."""

    def __init__(self, other: BlobFolder, item: UploadItem) -> None:
        super().__init__()
        self.other, self.item, self.done = other, item, False

    @contextmanager
    def large_file(self, name: str, size: int):
        def advance(count: int) -> None:
            if not self.done:
                self.done = True
                self.other.upload_files([self.item])

        yield advance


@pytest.mark.parametrize("size", ["same", "other"])
def test_an_upload_overtaken_by_another_of_the_same_file(blobs, container, prefix, big, size):
    """Content-addressed blobs: when another upload of the same bytes commits first, ours is done (the blob holds
    these bytes); a blob of another size there is still an error (never taken for ours)."""
    data = big.read_bytes()
    name = f"{prefix}/big.bin"
    theirs = UploadItem(big, name, len(data), _sha(data), None, zlib.crc32(data))
    if size == "other":
        shorter = big.with_name("shorter.bin")
        shorter.write_bytes(data[: len(data) // 2])
        theirs = UploadItem(shorter, name, len(data) // 2)
    ours = UploadItem(big, name, len(data), _sha(data), None, zlib.crc32(data))
    if size == "same":
        assert blobs.upload_files([ours], progress=_Overtaken(BlobFolder(container, concurrency=1), theirs)) == {
            name: _sha(data)}
        assert container.download_blob(name).readall() == data
    else:
        with pytest.raises(AzureMLError, match="InvalidBlockList|block list"):
            blobs.upload_files([ours], progress=_Overtaken(BlobFolder(container, concurrency=1), theirs))


def test_a_ranged_download_that_does_not_match_is_deleted(blobs, prefix, big, tmp_path):
    digests = blobs.upload_files([UploadItem(big, f"{prefix}/big.bin", big.stat().st_size)])
    dest = tmp_path / "out" / "big.bin"
    with pytest.raises(IntegrityError, match="Integrity check failed"):
        blobs.download_files([(f"{prefix}/big.bin", big.stat().st_size, dest)], expected_sha256={
            f"{prefix}/big.bin": "0" * 64})
    assert not dest.exists()
    blobs.download_files([(f"{prefix}/big.bin", big.stat().st_size, dest)], expected_sha256=digests)
    assert dest.read_bytes() == big.read_bytes()


def test_a_blob_replaced_during_a_ranged_download_is_an_error(blobs, container, prefix, big, tmp_path, monkeypatch):
    """Ranges after the first are asked with If-Match: two versions of a blob are never mixed."""
    from azure.storage.blob import BlobClient

    name = f"{prefix}/big.bin"
    blobs.upload_files([UploadItem(big, name, big.stat().st_size)])
    original = BlobClient.download_blob
    calls = []

    def replacing(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if not calls:
            container.upload_blob(name, os.urandom(big.stat().st_size), overwrite=True)
        calls.append(kwargs)
        return result

    monkeypatch.setattr(BlobClient, "download_blob", replacing)
    dest = tmp_path / "out" / "big.bin"
    with pytest.raises(AzureMLError, match="download of"):
        blobs.download_files([(name, big.stat().st_size, dest)])
    assert not dest.exists()


@pytest.fixture
def model_folder(tmp_path) -> Path:
    folder = tmp_path / "model"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "weights.bin").write_bytes(os.urandom(UPLOAD_BLOCK_SIZE + 5))
    (folder / "config.json").write_text('{"n": 1}')
    (folder / "nonce.txt").write_text(uuid.uuid4().hex)
    return folder


def _manifest_digest(workspace, name, version):
    stored = workspace.state.get_version("local-ws", name, str(version))["properties"]
    return stored["properties"]["mlflow.manifestSha256"]



def test_the_first_failing_small_file_stops_the_rest_and_is_raised(blobs, container, prefix, tmp_path):
    """200 small files on 4 threads, the 6th missing: its error is raised, and no file is started after it."""
    items = []
    for i in range(200):
        path = tmp_path / f"part-{i:03d}.bin"
        if i != 5:
            path.write_bytes(os.urandom(64))
        items.append(UploadItem(path, f"{prefix}/part-{i:03d}.bin", 64))
    with pytest.raises(FileNotFoundError, match="part-005.bin"):
        blobs.upload_files(items)
    uploaded = [b.name for b in container.list_blobs(name_starts_with=f"{prefix}/")]
    assert 0 < len(uploaded) < 20

def test_reregistering_reads_nothing_and_the_manifest_stays_the_same(
    workspace, client, model_name, model_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv(settings.HASH_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setattr(content, "_RACY_NS", 0)  # the files were just written; count them as settled
    client.create_registered_model(model_name)
    first = client.create_model_version(model_name, str(model_folder))

    def no_reading(*args, **kwargs):
        raise AssertionError("unchanged files must not be read again")

    with monkeypatch.context() as patched:
        patched.setattr(content, "open", no_reading, raising=False)
        second = client.create_model_version(model_name, str(model_folder))
    # Without the cache (or after the Azure ML SDK uploaded the folder) the reused upload's manifest is the same.
    monkeypatch.setenv(settings.HASH_CACHE, "false")
    third = client.create_model_version(model_name, str(model_folder))
    assert first.source == second.source == third.source
    digests = {_manifest_digest(workspace, model_name, mv.version) for mv in (first, second, third)}
    assert len(digests) == 1
    out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{third.version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(model_folder)


def test_small_files_are_read_once(workspace, client, model_name, tmp_path, monkeypatch):
    """The content hash reads them; the upload sends those bytes without opening the files again."""
    from mlflow_azureml_registry.azure import blob_upload

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"part-{i:02d}.bin").write_bytes(os.urandom(1000 + i))
    monkeypatch.setenv(settings.HASH_CACHE, "false")

    def no_reading(*args, **kwargs):
        raise AssertionError("the upload must send the bytes the content hash read")

    monkeypatch.setattr(blob_upload, "open", no_reading, raising=False)
    client.create_registered_model(model_name)
    version = client.create_model_version(model_name, str(folder)).version
    monkeypatch.undo()
    out = mlflow.artifacts.download_artifacts(f"models:/{model_name}/{version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)


@pytest.mark.parametrize("changed", ["data/weights.bin", "config.json"])
def test_a_file_changed_during_the_upload_registers_nothing(
    workspace, client, model_name, model_folder, monkeypatch, changed
):
    """Large files are hashed from the bytes sent; small ones are sent from the bytes hashed. Either way a file
    written after it was listed is caught, by its bytes or by its size and times."""
    original = BlobFolder.upload_files

    def upload_while_someone_writes(self, files, **kwargs):
        path = model_folder / changed
        path.write_bytes(os.urandom(path.stat().st_size))  # same size, other bytes
        return original(self, files, **kwargs)

    monkeypatch.setattr(BlobFolder, "upload_files", upload_while_someone_writes)
    client.create_registered_model(model_name)
    with pytest.raises(MlflowException, match="changed while") as info:
        client.create_model_version(model_name, str(model_folder))
    assert info.value.error_code == "INVALID_STATE"
    assert client.search_model_versions(f"name = '{model_name}'") == []
