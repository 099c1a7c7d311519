"""The Prometheus side: run metrics, the exporter's own metrics and the /metrics body."""
