"""The hub: ingest -> store -> aggregate -> reports (cases, alerts, API and exports come later)."""
