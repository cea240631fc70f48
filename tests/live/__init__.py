"""Live mode (the integration and conformance suites against a real Azure ML workspace or registry), the HTTP
traffic recorder, and the cleanup of what a live run created. Test instrumentation only: the plugin imports none
of it."""
