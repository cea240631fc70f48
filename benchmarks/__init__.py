"""Benchmarks for mlflow-azureml-registry: `python -m benchmarks` (see README)."""
