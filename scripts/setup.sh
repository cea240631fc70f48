#!/usr/bin/env bash
# Set up everything the demo and the tests need, on a fresh machine:
#   .venv          the plugin (editable) with its test/example dependencies, newest MLflow
#   .venv-oldest   the same with the oldest MLflow the plugin supports (the suite runs on both)
#   Azurite        pinned in mlflow_azureml_registry/local/azurite (npm ci from the lock file)
# Idempotent: re-running only installs what is missing. SETUP_OLDEST=0 skips .venv-oldest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OLDEST_MLFLOW=2.16.2

pip_install() {  # venv, then pip arguments; one pip command so the resolver sees every pin at once
  local venv=$1; shift
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # "compat" editable mode: a plain .pth path entry, so the install adds nothing to `import mlflow` time.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --config-settings editable_mode=compat -e ".[test]" "$@"
}

pip_install .venv
if [ "${SETUP_OLDEST:-1}" != 0 ]; then
  # MLflow 2.x SQL stores import what SQLAlchemy 2.1 removed; pin mlflow and mlflow-skinny together.
  pip_install .venv-oldest "mlflow==$OLDEST_MLFLOW" "mlflow-skinny==$OLDEST_MLFLOW" "sqlalchemy<2.1"
fi

AZURITE_DIR=mlflow_azureml_registry/local/azurite
STAMP="$AZURITE_DIR/node_modules/.installed-from-lock"
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ] || ! cmp -s "$AZURITE_DIR/package-lock.json" "$STAMP"; then
  npm ci --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error
  cp "$AZURITE_DIR/package-lock.json" "$STAMP"
fi
echo "setup: done (.venv: mlflow $(.venv/bin/python -c 'import mlflow; print(mlflow.__version__)')," \
  "Azurite $("$AZURITE_DIR/node_modules/.bin/azurite-blob" --version))"
