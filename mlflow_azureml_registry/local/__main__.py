"""``mlflow-azureml-registry local``: run the local workspace in the foreground.

When ready it prints one ``export NAME=VALUE`` line per variable a client needs, then ``ready``, and
flushes, so a wrapper can ``eval`` the lines or wait for ``ready``. SIGINT/SIGTERM stop the control
plane and Azurite; Azurite also dies with this process on Linux even after SIGKILL (PDEATHSIG).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Optional

from .azurite import AzuriteNotFound
from .faults import FaultInjector
from .latency import Latency
from .state import DEFAULT_PAGE_SIZE
from .workspace import LocalWorkspace


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlflow-azureml-registry local",
        description="Run a local Azure ML workspace (emulated control plane + Azurite).",
    )
    p.add_argument("--port", type=int, default=0, help="control-plane HTTPS port (default: a free port)")
    p.add_argument("--request-log", metavar="FILE", help="append one JSON line per control-plane request")
    p.add_argument("--blob-port", type=int, default=0, help="Azurite HTTPS port (default: a free port)")
    p.add_argument(
        "--page-size", type=int, default=DEFAULT_PAGE_SIZE,
        help=f"items per page of list answers (default {DEFAULT_PAGE_SIZE}, as the real service's model lists)",
    )
    p.add_argument(
        "--blob-persistence",
        choices=("memory", "disk"),
        default="memory",
        help="keep Azurite's blobs in memory (default) or on disk under --workdir",
    )
    p.add_argument("--workdir", help="folder for certificates and Azurite files (default: a temp folder)")
    p.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="R",
        help="answer this share (0-1) of control-plane requests with a fault: 429 with Retry-After, 500/503, "
        "a dropped connection, or an answer lost after the write happened (default 0)",
    )
    p.add_argument("--fault-seed", type=int, help="seed for --fault-rate and --latency's jitter, for repeatable runs")
    p.add_argument(
        "--latency",
        metavar="MS[:JITTER]",
        help="answer every control-plane request MS milliseconds (± up to JITTER) after it arrives, as a distant "
        "service would; blob requests are not delayed (default: none)",
    )
    p.add_argument(
        "--sas-ttl",
        type=float,
        metavar="SECONDS",
        help="SAS tokens from listSecrets expire after this many seconds (default: the hours asked for)",
    )
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if not 0 <= args.fault_rate <= 1:
        print("error: --fault-rate must be between 0 and 1", file=sys.stderr)
        return 2
    injector = FaultInjector(args.fault_rate, seed=args.fault_seed) if args.fault_rate else None
    try:
        latency = Latency.parse(args.latency, seed=args.fault_seed) if args.latency else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ws = LocalWorkspace(
        port=args.port,
        request_log=args.request_log,
        blob_port=args.blob_port,
        page_size=args.page_size,
        blob_persistence=args.blob_persistence,
        workdir=args.workdir,
        interceptor=injector,
        sas_ttl_s=args.sas_ttl,
        latency=latency,
    )
    try:
        try:
            ws.start()
        except AzuriteNotFound as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print("\n".join(ws.export_lines()), flush=True)
        print("ready", flush=True)
        print(
            f"Local Azure ML workspace: control plane {ws.resource_manager_url}, blobs "
            f"https://127.0.0.1:{ws.blob_port}; workspaces {', '.join(ws.workspaces)}; registry "
            f"{', '.join(ws.registry_names)} ({ws.azureml_registry_uri()}, discovery {ws.registry_discovery_url}). "
            + (f"Latency: {latency} per control-plane answer. " if latency else "")
            + "Ctrl-C or SIGTERM stops it.",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            if not ws.azurite_running:
                print("error: Azurite exited unexpectedly; see its log in the work folder.", file=sys.stderr)
                return 1
        return 0
    finally:
        if injector is not None:
            print(f"Fault injection: {injector.summary()}", file=sys.stderr, flush=True)
        ws.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
