"""The model folder policy at the walk (content.snapshot) and the source checks (sources): what a folder may hold,
what is refused before anything is read or uploaded, and what the policy costs. The same cases through
``register_model`` against the local workspace are in tests/integration/test_folder_policy.py."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from azure.ai.ml._utils._asset_utils import get_object_hash
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import content, settings, sources
from mlflow_azureml_registry.content import (
    BLOB_NAME_MAX,
    RELATIVE_PATH_MAX,
    RELATIVE_SEGMENTS_MAX,
    FileChangedError,
    FolderRefused,
    name_problem,
    snapshot,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(settings.HASH_CACHE_DIR, str(tmp_path_factory.mktemp("hash-cache")))
    monkeypatch.delenv(settings.HASH_CACHE, raising=False)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    return folder


def refused(root: Path, *fragments: str, code: str = "INVALID_PARAMETER_VALUE") -> FolderRefused:
    with pytest.raises(FolderRefused) as info:
        snapshot(root, cache=None)
    error = info.value
    assert isinstance(error, MlflowException) and error.error_code == code, error.message
    assert error.message.startswith(f"Model folder {root} cannot be registered: ")
    for fragment in fragments:
        assert fragment in error.message, error.message
    return error


# -- links -----------------------------------------------------------------------------------------------------
def test_links_inside_are_followed_and_hash_as_the_sdk_does(root):
    (root / "data" / "v3").mkdir(parents=True)
    (root / "data" / "v3" / "w.bin").write_bytes(os.urandom(5000))
    (root / "data" / "latest").symlink_to("v3", target_is_directory=True)
    (root / "also-latest").symlink_to(root / "data" / "v3", target_is_directory=True)  # absolute, and a diamond
    (root / "w.bin").symlink_to("data/v3/w.bin")
    snap = snapshot(root, cache=None)
    assert snap.content_hash == get_object_hash(root)
    assert [f.relative_path for f in snap.files] == [
        "also-latest/w.bin", "data/latest/w.bin", "data/v3/w.bin", "MLmodel", "w.bin"
    ]
    real = os.path.realpath(root / "data" / "v3" / "w.bin")
    assert {f.path for f in snap.files if f.relative_path == "w.bin"} == {real}  # read at the target, not the link


def test_a_model_folder_reached_through_a_link_is_the_folder(root, tmp_path):
    (root / "inside").symlink_to(root / "MLmodel")  # absolute, through the real path
    alias = tmp_path / "current"
    alias.symlink_to(root, target_is_directory=True)
    (root / "via-alias").symlink_to(alias / "MLmodel")  # through the alias of the root: still inside
    assert snapshot(alias, cache=None).content_hash == get_object_hash(root)


def test_a_link_is_judged_by_where_it_finally_points(root, tmp_path):
    (tmp_path / "hop").symlink_to(root / "MLmodel")  # outside, but pointing back in
    (root / "back-in").symlink_to(tmp_path / "hop")
    assert [f.relative_path for f in snapshot(root, cache=None).files] == ["back-in", "MLmodel"]


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_a_link_that_leaves_is_refused_and_its_target_not_read(root, tmp_path, absolute, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (root / "innocent.txt").symlink_to(secret if absolute else Path("..") / "secret.txt")
    monkeypatch.setattr(content, "open", lambda *a, **k: pytest.fail("nothing is read"), raising=False)
    error = refused(root, "'innocent.txt' is a symbolic link to", str(secret), "outside the model folder", "copy")
    assert error.relative_path == "innocent.txt"


def test_a_folder_link_that_leaves_is_refused_before_it_is_walked(root, monkeypatch):
    (root / "etc").symlink_to("/etc", target_is_directory=True)
    scanned = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scanned.append(str(path)) or real_scandir(path))
    refused(root, "'etc' is a symbolic link to /etc, outside")
    assert scanned == [str(root)]


@pytest.mark.parametrize(
    ("links", "named", "fragment"),
    [
        ({"self": "."}, "'self'", "(the model folder itself)"),
        ({"a": ".", "b": "."}, "'a'", "loop"),
        ({"sub/up": ".."}, "'sub/up'", "(the model folder itself)"),
        ({"sub/deeper/up": "../../sub"}, "'sub/deeper/up'", "(the folder 'sub')"),
        ({"A/toB": "../B", "B/toA": "../A"}, "'A/toB/toA'", "(the folder 'A')"),  # a loop of two links
    ],
    ids=["self", "two-loops", "parent", "grandparent", "two-links"],
)
def test_a_link_to_a_folder_that_contains_it_is_a_loop(root, links, named, fragment):
    for link, target in links.items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target, target_is_directory=True)
    (root / "sub").mkdir(exist_ok=True)
    refused(root, named, fragment, "would never end (a loop)", "remove the link")


def test_links_that_never_resolve_and_links_to_nothing(root):
    (root / "ping").symlink_to("pong")
    (root / "pong").symlink_to("ping")
    refused(root, "'ping' is a symbolic link that never resolves")
    (root / "ping").unlink()
    (root / "pong").unlink()
    (root / "weights.bin").symlink_to("weights-v2.bin")
    refused(root, "'weights.bin' is a symbolic link to", "weights-v2.bin, which does not exist", "restore")


# -- special files -------------------------------------------------------------------------------------------
def test_a_fifo_is_refused_without_being_opened(root):
    os.mkfifo(root / "pipe")
    refused(root, "'pipe' is a FIFO (named pipe)", "regular files and folders only", "remove it")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_devices_are_refused(root):
    os.mknod(root / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    refused(root, "'null' is a character device")
    os.unlink(root / "null")
    os.mknod(root / "loop", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    refused(root, "'loop' is a block device")


def test_a_socket_is_refused(root, monkeypatch):
    monkeypatch.chdir(root)  # a relative bind: socket paths are limited to about 100 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("control.sock")
        refused(root, "'control.sock' is a socket")


def test_a_link_inside_to_a_special_file_is_refused(root):
    os.mkfifo(root / "pipe")
    (root / "a-link").symlink_to("pipe")
    refused(root, "'a-link' is a symbolic link to", "which is a FIFO")


def test_a_file_replaced_by_a_fifo_after_the_listing_is_a_change_not_a_hang(root, monkeypatch):
    (root / "w.bin").write_bytes(b"0123456789")
    listed = content.FolderWalk.run

    def then_swap(walk):
        listed(walk)
        (root / "w.bin").unlink()
        os.mkfifo(root / "w.bin")

    monkeypatch.setattr(content.FolderWalk, "run", then_swap)
    with pytest.raises(FileChangedError):
        snapshot(root, cache=None)


def test_a_file_replaced_by_a_link_after_the_listing_is_not_followed(root, tmp_path, monkeypatch):
    (root / "w.bin").write_bytes(b"0123456789")
    (tmp_path / "secret").write_bytes(b"outside!!!")
    listed = content.FolderWalk.run

    def then_swap(walk):
        listed(walk)
        (root / "w.bin").unlink()
        (root / "w.bin").symlink_to(tmp_path / "secret")

    monkeypatch.setattr(content.FolderWalk, "run", then_swap)
    with pytest.raises(FileChangedError):
        snapshot(root, cache=None)


# -- names ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a\\b", "backslash"),
        ("a\nb", "U+000A, a control character"),
        ("a\x00b", "U+0000"),
        ("\x1f", "U+001F"),
        ("del\x7f", "U+007F"),
        ("c1\x81", "U+0081, a control character"),
        ("\ue000", "U+E000, a private-use character"),
        ("\U0010fffd", "U+10FFFD, a private-use character"),
        ("\ufdd0", "U+FDD0, a Unicode noncharacter"),
        ("a\ufffe", "U+FFFE, a Unicode noncharacter"),
        ("\U0001ffff", "U+1FFFF, a Unicode noncharacter"),
        ("caf\udce9", "not valid UTF-8"),
        ("weights.", "ends with a dot"),
        ("...", "ends with a dot"),
    ],
)
def test_names_the_blob_store_would_change_or_refuse(name, problem):
    assert problem in name_problem(name)


@pytest.mark.parametrize(
    "name",
    ["MLmodel", "a%41b", "100%", "%2F", "a b ", " x", "q?x", "h#x", "p+q", "a&b=c;d", "it's", "[x]{y}", "~",
     "模型", "e\u0301", "\u00e9", "\U0001f600", "zero\u200bwidth", "\ufeffbom", ".hidden", "..x", ".a.b",
     "x" * 255],
)
def test_names_the_blob_store_keeps(name):
    assert name_problem(name) is None


def test_a_bad_name_is_refused_before_anything_is_read(root, monkeypatch):
    (root / "ok.txt").write_text("x")
    (root / "sub").mkdir()
    (root / "sub" / "a\\b.txt").write_text("x")
    monkeypatch.setattr(content, "open", lambda *a, **k: pytest.fail("nothing is read"), raising=False)
    error = refused(root, "'sub/a\\\\b.txt' cannot be stored as an Azure blob name", "stores as '/'", "rename it")
    assert error.relative_path == "sub/a\\b.txt"


def test_a_name_that_is_not_utf8_is_refused(root):
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"x")
    refused(root, "'caf\\udce9.txt'", "is not valid UTF-8")


def test_an_empty_folder_with_a_bad_name_is_refused_too(root):
    (root / "v1.").mkdir()
    refused(root, "'v1.'", "ends with a dot")


def test_path_length_and_segments_are_bounded(root):
    assert BLOB_NAME_MAX - len("LocalUpload/") - 64 - 1 - 255 - 1 == RELATIVE_PATH_MAX
    fits = root / ("d" * 200) / ("d" * 200) / ("d" * 200)
    fits.mkdir(parents=True)
    (fits / ("f" * (RELATIVE_PATH_MAX - 603))).write_text("x")  # exactly RELATIVE_PATH_MAX characters
    snapshot(root, cache=None)
    (fits / ("f" * (RELATIVE_PATH_MAX - 602))).write_text("x")
    refused(root, f"is a path of {RELATIVE_PATH_MAX + 1} characters", "1,024", "shorten")


def test_characters_outside_the_bmp_count_twice(root):
    deep = root.joinpath(*["\U0001f600" * 60] * 5)  # 300 code points, 600 UTF-16 units, 1,200 bytes
    deep.mkdir(parents=True)
    (deep / ("x" * 95)).write_text("x")
    refused(root, f"is a path of {5 * 121 + 95} characters")


def test_too_many_segments(root):
    deep = root.joinpath(*["s"] * RELATIVE_SEGMENTS_MAX)
    deep.mkdir(parents=True)
    (deep.parent / "ok").write_text("x")
    snapshot(root, cache=None)
    (deep / "w").write_text("x")
    refused(root, f"is a path of {RELATIVE_SEGMENTS_MAX + 1} segments", "254")


# -- what the policy costs -------------------------------------------------------------------------------------
def test_the_policy_adds_no_system_call_per_file(root, monkeypatch):
    """The names come with the directory listing and the folder identities with the listing's own stat: only the
    root is stat-ed and resolved once more, and links' targets resolved."""
    for i in range(30):
        (root / f"f{i}").write_text("x")
    (root / "sub").mkdir()
    for i in range(30):
        (root / "sub" / f"g{i}").write_text("x")
    (root / "link").symlink_to("sub", target_is_directory=True)
    monkeypatch.setenv(settings.HASH_CACHE, "false")  # the cache's own checks are not the walk's
    calls = {"stat": 0, "lstat": 0, "realpath": 0}

    def counting(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(os, "stat", counting("stat", os.stat))
    monkeypatch.setattr(os, "lstat", counting("lstat", os.lstat))
    monkeypatch.setattr(os.path, "realpath", counting("realpath", os.path.realpath))
    snap = snapshot(root, cache=None)
    assert len(snap.files) == 91
    assert calls["stat"] == 1  # the root (DirEntry.stat is not os.stat: one per entry, as before)
    assert calls["realpath"] == 2  # the root and the one link (realpath's own lstats are its business)


# -- sources: file:// URIs and folder names ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:///srv/models/m", "/srv/models/m"),
        ("file://localhost/srv/models/m", "/srv/models/m"),
        ("file://LOCALHOST/srv/m", "/srv/m"),
        ("file:///srv/a%20b/m%3Bv1", "/srv/a b/m;v1"),
        ("file:///srv/m;v1", "/srv/m;v1"),  # not URI parameters: part of the name
        ("/srv/models/m", "/srv/models/m"),
        ("relative/m", "relative/m"),
    ],
)
def test_local_paths(uri, path):
    assert sources._local_path(uri) == Path(path)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("file://somehost/etc", "on host 'somehost'"),
        ("file://user@localhost/etc", "on host 'user@localhost'"),
        ("file://localhost:22/etc", "on host 'localhost:22'"),
        ("file:///srv/m?x=1", "query or fragment"),
        ("file:///srv/m?", "query or fragment"),
        ("file:///srv/m#v1", "query or fragment"),
        ("file:///srv/m%00x", "NUL"),
    ],
)
def test_file_uris_that_do_not_name_a_local_folder_are_refused(uri, fragment):
    with pytest.raises(MlflowException) as info:
        sources._local_path(uri)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert fragment in info.value.message and repr(uri) in info.value.message


def test_an_upload_folder_name_too_long_for_a_blob_name_is_refused(root):
    with pytest.raises(MlflowException) as info:
        sources._checked(root, "runs:/r/" + "m" * 300, "m" * 300)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE" and "at most 255" in info.value.message
    assert sources._checked(root, str(root), "m" * 255).folder_name == "m" * 255
