#!/usr/bin/env bash
# Set up everything the demo and the tests need, on a fresh machine:
#   .venv        the plugin (editable) with its test/example dependencies, newest MLflow
#   Azurite      pinned in mlflow_azureml_registry/local/azurite (npm ci from the lock file)
# Idempotent: re-running only installs what is missing or changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# "compat" editable mode: a plain .pth path entry, so the install adds nothing to `import mlflow` time.
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  --config-settings editable_mode=compat -e ".[test]"

AZURITE_DIR=mlflow_azureml_registry/local/azurite
STAMP="$AZURITE_DIR/node_modules/.installed-from-lock"
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] || ! cmp -s "$AZURITE_DIR/package-lock.json" "$STAMP"; then
  npm ci --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error
  cp "$AZURITE_DIR/package-lock.json" "$STAMP"
fi
echo "setup: done (.venv, Azurite $("$AZURITE_DIR/node_modules/.bin/azurite-blob" --version))"
