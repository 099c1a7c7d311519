"""The OpenTelemetry side: spans built from runs, the span queue and the span exporters."""
