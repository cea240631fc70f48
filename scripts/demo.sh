#!/usr/bin/env bash
# Start the local Azure ML workspace, run examples/quickstart.py against it, stop the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
.venv/bin/mlflow-azureml-registry local >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 1 600); do
  grep -qx ready "$out" && break
  kill -0 $pid 2>/dev/null || { cat "$out"; echo "demo: the local workspace did not start" >&2; exit 1; }
  sleep 0.1
done
grep -qx ready "$out" || { echo "demo: the local workspace was not ready after 60 s" >&2; exit 1; }
eval "$(grep '^export ' "$out")"
echo "demo: local workspace ready; MLFLOW_REGISTRY_URI=$MLFLOW_REGISTRY_URI"
.venv/bin/python examples/quickstart.py
