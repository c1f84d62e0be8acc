"""The terminal: a pure rating flow plus drivers at the edge (keys, outbox, settings, MQTT link)."""

__version__ = "0.1.0"
