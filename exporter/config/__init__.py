"""Configuration: the typed settings models, how they are loaded, durations and sharding."""
