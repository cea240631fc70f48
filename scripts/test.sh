#!/usr/bin/env bash
# The whole test suite (what CI runs): lint, then pytest against the local workspace, on the newest
# MLflow (.venv) and on the oldest supported one (.venv-oldest, when set up). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
for venv in .venv .venv-oldest; do
  [ -x "$venv/bin/python" ] || continue
  echo "== tests on mlflow $("$venv/bin/python" -c 'import mlflow; print(mlflow.__version__)') ($venv)"
  "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
done
