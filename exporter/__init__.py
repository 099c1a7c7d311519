"""agent-runs-exporter: Prometheus metrics and OpenTelemetry traces for hosted AI agent runs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("agent-runs-exporter")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
