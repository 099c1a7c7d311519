"""Platform sources: each knows one platform's HTTP API and translates its payloads into `Run`s."""
