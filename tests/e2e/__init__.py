"""End-to-end tests: the exporter as a real process against real collectors and fakes."""
