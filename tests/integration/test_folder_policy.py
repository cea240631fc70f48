"""The model folder policy, through the real path (issue 15, "The model folder is trusted too far").

What a model folder may hold: regular files and folders, and symbolic links whose target is inside the folder
(followed). Refused before anything is uploaded, with ``INVALID_PARAMETER_VALUE`` and a message naming the path
and what to do: a link that leaves the folder, a link that leads back to a folder containing it (a loop), a link
to nothing, a FIFO, device or socket, and a name that Azure Blob Storage would change or refuse. A refused
folder leaves no blob in the datastore and no version; whatever is registered downloads back byte-identical.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import mlflow
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException

from ..conftest import files_of

pytestmark = pytest.mark.emulator_only(
    "counts the blob requests sent to the emulator's port and reads its state; the folder policy is "
    "client-side, so a live run adds uploads and nothing else"
)

WS = "local-ws"
INVALID = "INVALID_PARAMETER_VALUE"
TIME_LIMIT_S = 20  # a refusal takes milliseconds; a walk that follows loops never ends


class Hung(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hung` in the main thread after ``seconds`` (a loop that never ends must fail, not hang)."""

    def expire(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def blob_requests(workspace: Any) -> Iterator[list[str]]:
    """Every request the plugin sends to the blob store meanwhile ("METHOD url"). Counted at the transport, not by
    listing the container: a blob whose name holds a control character makes Azurite's listings fail."""
    from azure.core.pipeline.transport import RequestsTransport

    sent: list[str] = []
    original = RequestsTransport.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        if f":{workspace.blob_port}/" in request.url:
            sent.append(f"{request.method} {request.url.split('?', 1)[0]}")
        return original(self, request, **kwargs)

    RequestsTransport.send = send
    try:
        yield sent
    finally:
        RequestsTransport.send = original


def registered_state(workspace: Any, name: str) -> Any:
    model = workspace.state.workspace(WS).models.get(name)
    return None if model is None else (workspace.state.get_model(WS, name), sorted(model.versions))


def assert_refused(workspace: Any, name: str, call: Callable[[], Any], *fragments: str) -> MlflowException:
    """``call`` raises INVALID_PARAMETER_VALUE naming ``fragments``, within the time limit, before any request to
    the blob store (nothing uploaded), and nothing is registered."""
    state = registered_state(workspace, name)
    with pytest.raises(MlflowException) as info, blob_requests(workspace) as sent, time_limit(TIME_LIMIT_S):
        call()
    error = info.value
    assert error.error_code == INVALID, error.message
    for fragment in fragments:
        assert fragment in error.message, error.message
    assert "Traceback" not in error.message
    assert sent == [], "the blob store was called for a refused folder"
    assert registered_state(workspace, name) == state, "a refused folder changed the registry"
    return error


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A small model folder whose content address is unique to the test."""
    root = tmp_path / "model"
    root.mkdir()
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "nonce.txt").write_text(uuid.uuid4().hex)
    return root


@pytest.fixture
def registered(client: Any, model_name: str) -> str:
    client.create_registered_model(model_name)
    return model_name


def _register(folder: Path, name: str) -> Callable[[], Any]:
    return lambda: mlflow.register_model(str(folder), name)


def _create(client: Any, folder: Path, name: str) -> Callable[[], Any]:
    return lambda: client.create_model_version(name, str(folder))


# -- links ----------------------------------------------------------------------------------------------
def test_a_file_link_that_leaves_the_folder_is_refused(workspace, registered, folder, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the outside file's bytes")
    (folder / "innocent.txt").symlink_to(outside / "secret.txt")
    assert_refused(workspace, registered, _register(folder, registered), "'innocent.txt'", "outside the model folder",
                   str(outside / "secret.txt"), "copy")


def test_a_folder_link_to_etc_is_refused_without_walking_it(workspace, client, registered, folder):
    (folder / "etc").symlink_to("/etc", target_is_directory=True)
    assert_refused(workspace, registered, _create(client, folder, registered), "'etc'",
                   "outside the model folder")


def test_one_link_loop_is_refused(workspace, client, registered, folder):
    (folder / "self").symlink_to(".", target_is_directory=True)
    assert_refused(workspace, registered, _create(client, folder, registered), "'self'", "loop", "remove")


def test_two_link_loops_are_refused_at_once(workspace, registered, folder):
    (folder / "a").symlink_to(".", target_is_directory=True)
    (folder / "b").symlink_to(".", target_is_directory=True)
    assert_refused(workspace, registered, _register(folder, registered), "'a'", "loop")


def test_a_loop_through_a_parent_folder_is_refused(workspace, client, registered, folder):
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "sub" / "deeper" / "up").symlink_to("../..", target_is_directory=True)
    assert_refused(workspace, registered, _create(client, folder, registered), "'sub/deeper/up'", "loop")


def test_links_that_never_resolve_are_refused(workspace, client, registered, folder):
    (folder / "ping").symlink_to("pong")
    (folder / "pong").symlink_to("ping")
    assert_refused(workspace, registered, _create(client, folder, registered), "'ping'", "never resolves")


def test_a_link_to_nothing_is_refused(workspace, client, registered, folder):
    (folder / "weights.bin").symlink_to("weights-v2.bin")
    assert_refused(workspace, registered, _create(client, folder, registered), "'weights.bin'", "does not exist")


def test_links_that_stay_inside_are_followed(workspace, client, registered, folder, tmp_path):
    (folder / "data" / "v3").mkdir(parents=True)
    (folder / "data" / "v3" / "weights.bin").write_bytes(os.urandom(3000))
    (folder / "data" / "latest").symlink_to("v3", target_is_directory=True)
    (folder / "weights.bin").symlink_to(folder / "data" / "v3" / "weights.bin")  # absolute, still inside
    mv = client.create_model_version(registered, str(folder))
    out = Path(mlflow.artifacts.download_artifacts(f"models:/{registered}/{mv.version}", dst_path=str(tmp_path / "dl")))
    got = files_of(out)
    got.pop("registered_model_meta", None)
    weights = (folder / "data" / "v3" / "weights.bin").read_bytes()
    assert got == {**files_of(folder), "weights.bin": weights, "data/latest/weights.bin": weights}


def test_a_model_folder_that_is_itself_a_link_is_registered(workspace, client, registered, folder, tmp_path):
    alias = tmp_path / "current"
    alias.symlink_to(folder, target_is_directory=True)
    mv = client.create_model_version(registered, str(alias))
    out = mlflow.artifacts.download_artifacts(f"models:/{registered}/{mv.version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)


# -- special files ----------------------------------------------------------------------------------------
def test_a_fifo_is_refused(workspace, client, registered, folder):
    os.mkfifo(folder / "pipe")
    assert_refused(workspace, registered, _create(client, folder, registered), "'pipe'", "FIFO", "remove")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_is_refused(workspace, client, registered, folder):
    os.mknod(folder / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert_refused(workspace, registered, _create(client, folder, registered), "'null'", "device")


def test_a_socket_is_refused(workspace, client, registered, folder):
    server = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    try:
        os.chdir(folder)  # a relative bind: socket paths are limited to about 100 bytes
        server.bind("control.sock")
    finally:
        os.chdir(cwd)
    try:
        assert_refused(workspace, registered, _create(client, folder, registered), "'control.sock'", "socket")
    finally:
        server.close()


# -- names the blob store would change or refuse ------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("a\\b.txt", "backslash"),
        ("a\nb.txt", "U+000A"),
        ("tab\tname", "U+0009"),
        ("bell\x07", "U+0007"),
        ("c1\x85", "U+0085"),
        ("private\ue000", "U+E000"),
        ("nonchar\uffff", "U+FFFF"),
        ("weights.", "ends with a dot"),
    ],
    ids=["backslash", "newline", "tab", "bell", "c1-control", "private-use", "noncharacter", "trailing-dot"],
)
def test_a_name_the_blob_store_would_change_is_refused(workspace, client, registered, folder, name, fragment):
    (folder / name).write_text("x")
    assert_refused(workspace, registered, _create(client, folder, registered), repr(name), fragment,
                   "blob name", "rename")


def test_a_folder_name_the_blob_store_would_change_is_refused(workspace, client, registered, folder):
    (folder / "v1.").mkdir()
    (folder / "v1." / "weights.bin").write_text("x")
    assert_refused(workspace, registered, _create(client, folder, registered), "'v1.'", "ends with a dot")


def test_a_name_that_is_not_utf8_is_refused(workspace, client, registered, folder):
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"latin-1 name")
    assert_refused(workspace, registered, _create(client, folder, registered), "caf", "UTF-8")


def test_a_path_too_long_for_a_blob_name_is_refused(workspace, client, registered, folder):
    deep = folder
    for _ in range(5):  # over 1,024 characters whatever the upload prefix
        deep = deep / ("d" * 240)
    deep.mkdir(parents=True)
    (deep / "weights.bin").write_text("x")
    assert_refused(workspace, registered, _create(client, folder, registered), "weights.bin", "1,024")


def test_too_many_path_segments_are_refused(workspace, client, registered, folder):
    deep = folder.joinpath(*(["s"] * 260))
    deep.mkdir(parents=True)
    (deep / "w").write_text("x")
    assert_refused(workspace, registered, _create(client, folder, registered), "s/s/s", "254")


def test_names_the_blob_store_keeps_round_trip(workspace, client, registered, folder, tmp_path):
    """Percent signs, spaces, URL delimiters, non-ASCII (composed and decomposed), emoji, a leading dot."""
    for name in ["a%41b", "100%", "a b ", " lead", "q?x", "h#x", "p+q", "a&b=c;d", "模型", "e\u0301", "\U0001f600",
                 ".hidden", "..dots", "~tilde", "[x]{y}", "it's", "zero\u200bwidth"]:
        (folder / name).write_text(f"content of {name}")
    (folder / "sub dir%20").mkdir()
    (folder / "sub dir%20" / "x#1").write_text("nested")
    mv = client.create_model_version(registered, str(folder))
    out = mlflow.artifacts.download_artifacts(f"models:/{registered}/{mv.version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)


# -- file:// URIs ---------------------------------------------------------------------------------------------
def test_a_file_uri_with_a_host_is_refused(workspace, client, registered, folder):
    assert_refused(workspace, registered, lambda: client.create_model_version(registered, f"file://somehost{folder}"),
                   "'somehost'", "file:///")


@pytest.mark.parametrize("tail", ["?x=1", "#frag"], ids=["query", "fragment"])
def test_a_file_uri_with_a_query_or_fragment_is_refused(workspace, client, registered, folder, tail):
    assert_refused(workspace, registered, lambda: client.create_model_version(registered, f"file://{folder}{tail}"),
                   tail, "percent-encode")


def test_a_file_uri_of_localhost_is_a_local_path(workspace, client, registered, folder, tmp_path):
    mv = client.create_model_version(registered, f"file://localhost{folder}")
    out = mlflow.artifacts.download_artifacts(f"models:/{registered}/{mv.version}", dst_path=str(tmp_path / "dl"))
    got = files_of(Path(out))
    got.pop("registered_model_meta", None)
    assert got == files_of(folder)


# -- property: generated folder trees ------------------------------------------------------------------------
KEPT_NAMES = ["%41", "100%", "a b", " lead", "#x", "?q", "a&b=c", "模型", "e\u0301", "\U0001f600", ".hidden", "..x",
              "x" * 200]  # names the blob store keeps as they are
ODD_NAMES = ["a\\b", "new\nline", "tab\t", "dot.", "\x7f", "\x1b", "\ue000", "\uffff", *KEPT_NAMES]
PLAIN = st.text(alphabet="abcAB_-", min_size=1, max_size=6)
ODD_TEXT = st.text(alphabet="abAB.%# _-\\\n\u00e9", min_size=1, max_size=6)
KEEPABLE = ["file"] * 4 + ["dir"] * 2 + ["inside-file-link", "inside-dir-link"] * 2


def _entries(kinds: list[str], names: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, int, str, bytes]]]:
    """(kind, pick, name, bytes): ``pick`` chooses the parent folder (and a link's target) among those made so far."""
    entry = st.tuples(st.sampled_from(kinds), st.integers(min_value=0, max_value=50), names, st.binary(max_size=64))
    return st.lists(entry, min_size=1, max_size=8)


TREES = st.one_of(
    _entries(KEEPABLE, st.one_of(PLAIN, PLAIN, st.sampled_from(KEPT_NAMES))),  # what should register
    _entries(
        [*KEEPABLE, "outside-link", "loop", "fifo"], st.one_of(PLAIN, PLAIN, st.sampled_from(ODD_NAMES), ODD_TEXT)
    ),
)


def _build(root: Path, outside: Path, entries: list[tuple[str, int, str, bytes]]) -> None:
    folders, files = [root], []
    for kind, pick, name, data in entries:
        if name in (".", "..") or "/" in name or "\x00" in name or len(name.encode()) > 255:
            continue
        parent = folders[pick % len(folders)]
        path = parent / name
        if os.path.lexists(path):
            continue
        if kind == "file":
            path.write_bytes(data)
            files.append(path)
        elif kind == "dir":
            path.mkdir()
            folders.append(path)
        elif kind == "inside-file-link" and files:
            path.symlink_to(files[pick % len(files)])
        elif kind == "inside-dir-link":
            target = folders[pick % len(folders)]
            if parent == target or parent.is_relative_to(target):
                continue  # that is the "loop" kind
            path.symlink_to(target, target_is_directory=True)
        elif kind == "outside-link":
            path.symlink_to(outside)
        elif kind == "loop":
            ancestors = [f for f in folders if parent == f or parent.is_relative_to(f)]
            path.symlink_to(ancestors[pick % len(ancestors)], target_is_directory=True)
        elif kind == "fifo":
            os.mkfifo(path)
    if not files:
        (root / "MLmodel").write_text("flavors: {}\n")
    (root / "nonce.txt").write_text(uuid.uuid4().hex)  # a content address of its own


def _what_the_policy_refuses(root: Path) -> list[str]:
    """An oracle independent of the plugin's walk: links that leave ``root`` or lead to a folder that contains them,
    and entries that are neither files, folders nor links."""
    found = []
    real_root = os.path.realpath(root)
    for directory, dirs, names in os.walk(root):  # links are not followed: each is judged where it is
        for name in dirs + names:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                target = os.path.realpath(path)
                if os.path.commonpath([real_root, target]) != real_root:
                    found.append(f"{path}: leaves")
                elif os.path.commonpath([target, os.path.realpath(directory)]) == target:
                    found.append(f"{path}: loop")
                elif not os.path.exists(path):
                    found.append(f"{path}: to nothing")
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append(f"{path}: special")
    return found


_NAMED = re.compile(r"cannot be registered: ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


def _expected_files(root: Path) -> dict[str, bytes]:
    """What a registered folder must download as: every file, links followed (only reached when they stay inside
    and make no loop, so os.walk ends)."""
    found = {}
    for directory, _, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(directory) / name
            found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=TREES)
def test_any_folder_is_refused_before_upload_or_loads_back_identical(workspace, client, registered, entries):
    scratch = Path(tempfile.mkdtemp(prefix="folder-policy-"))
    try:
        root, outside = scratch / "model", scratch / "outside.txt"
        root.mkdir()
        outside.write_text("outside")
        _build(root, outside, entries)
        state = registered_state(workspace, registered)
        try:
            with blob_requests(workspace) as sent, time_limit(TIME_LIMIT_S):
                mv = client.create_model_version(registered, str(root))
        except MlflowException as error:
            assert error.error_code == INVALID, error.message
            assert error.message.startswith(f"Model folder {root} cannot be registered: "), error.message
            named = _NAMED.search(error.message)
            assert named and os.path.lexists(root / ast.literal_eval(named.group(1))), error.message
            assert sent == []
            assert registered_state(workspace, registered) == state
            event("refused")
            return
        assert _what_the_policy_refuses(root) == []
        out = mlflow.artifacts.download_artifacts(f"models:/{registered}/{mv.version}", dst_path=str(scratch / "dl"))
        got = files_of(Path(out))
        got.pop("registered_model_meta", None)
        assert got == _expected_files(root)
        event("registered and downloaded")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
