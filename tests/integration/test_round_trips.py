"""Round trips per MlflowClient call are deterministic: a regression fails CI (see benchmarks/round_trips.py)."""

from __future__ import annotations

import pytest

from benchmarks import round_trips

pytestmark = pytest.mark.emulator_only("counts requests per call under the emulator's injected latency")

LATENCY_MS = 100.0
"""Every control-plane answer of the measured calls is delayed this long (the local workspace's --latency)."""


@pytest.fixture(scope="module")
def rows(workspace):
    model_dir = round_trips.sample_model_dir()
    try:
        yield {r.call: r for r in round_trips.measure(workspace, model_dir, "round-trips", latency_ms=LATENCY_MS)}
    finally:
        round_trips.cleanup(model_dir)


@pytest.mark.parametrize("call", list(round_trips.MINIMUM))
def test_control_plane_requests_equal_the_documented_count(rows, call):
    assert rows[call].control_plane == round_trips.expected(call)
    assert rows[call].control_plane >= rows[call].minimum_control_plane


def test_blob_requests(rows):
    files = 6  # the sample model's 5 files + the nonce that makes the first upload fresh
    # The new model's write lease: acquire (404: no lease blob yet), create it, acquire, release;
    # HEAD (complete already?), PUT each file, the SHA-256 manifest, the completion marker;
    # the lease again around the version number (acquire, release)
    assert rows["register_model (first in process)"].blob == 4 + 1 + files + 1 + 1 + 2
    # HEAD finds the marker; the stored manifest and a listing show the upload still holds these files (issue #15):
    # nothing uploaded; lease
    assert rows["register_model (second, same files)"].blob == 3 + 2
    # one listing, the manifest, one GET per file (each checked against the manifest as it streams)
    assert rows["load_model('models:/<name>@<alias>') cold"].blob == 1 + 1 + (files - 1)
    for call in ("get_registered_model", "get_model_version", "get_latest_versions"):
        assert rows[call].blob == 0
    # writes hold the model's lease (acquire + release): the API has no conditional writes
    for call in ("transition_model_version_stage", "set_model_version_tag", "set_registered_model_alias",
                 "delete_model_version"):
        assert rows[call].blob == 2


@pytest.fixture(scope="module")
def registry_rows(workspace):
    model_dir = round_trips.sample_model_dir()
    try:
        yield {r.call: r for r in round_trips.measure(workspace, model_dir, "round-trips-reg", registry=True,
                                                      latency_ms=LATENCY_MS)}
    finally:
        round_trips.cleanup(model_dir)


@pytest.mark.parametrize("call", list(round_trips.REGISTRY_MINIMUM))
def test_registry_requests_equal_the_documented_count(registry_rows, call):
    assert registry_rows[call].control_plane == round_trips.expected(call, registry=True)
    assert registry_rows[call].control_plane >= registry_rows[call].minimum_control_plane


def test_registry_blob_requests(registry_rows):
    files = 6
    # a listing (the pending upload must be empty), every file and the manifest, into the version's own pending
    # upload; + the local registry creating that upload's container (it runs in this process: its request counts)
    assert registry_rows["register_model (first in process)"].blob == 1 + files + 1 + 1
    assert registry_rows["register_model (second, same files)"].blob == 1 + files + 1 + 1
    assert registry_rows["load_model('models:/<name>@<alias>') cold"].blob == 1 + 1 + (files - 1)
    for call in ("get_registered_model", "transition_model_version_stage", "set_model_version_tag"):
        assert registry_rows[call].blob == 0  # a registry has no blob lease (a file lock)


def _check_critical_path(row, expected: int) -> None:
    # The chain: requests each sent after the previous one's answer (from the request log; exact).
    assert row.chain == expected == row.minimum_chain, row
    # The wall time, in latencies: at least the chain; for calls without blob transfers, within one latency of it
    # (the client's own work between requests: the tolerance for noise).
    assert row.critical_path >= expected - 0.05, row
    if row.blob == 0:
        assert row.critical_path < expected + 1, row


@pytest.mark.parametrize("call", list(round_trips.CRITICAL))
def test_critical_path_equals_the_documented_minimum(rows, call):
    _check_critical_path(rows[call], round_trips.critical(call))


@pytest.mark.parametrize("call", list(round_trips.REGISTRY_CRITICAL))
def test_registry_critical_path_equals_the_documented_minimum(registry_rows, call):
    _check_critical_path(registry_rows[call], round_trips.critical(call, registry=True))
