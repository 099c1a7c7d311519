"""Sinks: where finished runs go (Prometheus metrics, OpenTelemetry spans)."""
