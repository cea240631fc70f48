#!/usr/bin/env bash
# The whole test suite (what CI runs): lint, then pytest against the local workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
