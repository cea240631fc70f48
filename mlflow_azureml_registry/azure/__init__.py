"""The Azure gateway: Azure ML REST calls and blob transfers. Knows nothing of MLflow."""
