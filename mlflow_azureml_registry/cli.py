"""The ``mlflow-azureml-registry`` command: a dispatcher; each command lives in its own module."""

from __future__ import annotations

import sys
from typing import Optional

USAGE = """usage: mlflow-azureml-registry <command> [options]

commands:
  local     run the local Azure ML workspace (emulated control plane + Azurite) in the foreground
  doctor    check a registry URI's set-up (credential, access, datastore, storage, clock, plugins), one line per check
  gc        list (and with --apply delete) upload folders in the datastore that no model version references
"""


def main(argv: Optional[list[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    command, rest = args[0], args[1:]
    if command == "local":
        from .local.__main__ import main as local_main

        return local_main(rest)
    if command == "doctor":
        from .doctor import main as doctor_main

        return doctor_main(rest)
    if command == "gc":
        from .storage_gc import main as gc_main

        return gc_main(rest)
    print(f"mlflow-azureml-registry: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
