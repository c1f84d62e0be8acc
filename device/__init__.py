"""The terminal: a pure rating flow (flow.py) and delivery rule (delivery.py), one loop that runs
them (terminal.py), and the parts it drives: the recorder (outbox, stored state), the uplink (the
broker), telemetry (health, events), and the input/output backends (io/: key panel, stdin)."""

__version__ = "0.1.0"
