"""The hub's exception tree (wire-level refusals use protocol.ProtocolError and its reason codes).

HubError
├── StoreError        the database cannot be opened, read or written
│   └── SchemaError   the database is at another schema version than this pingjia's (`pingjia hub migrate`)
├── RegistryError     a device or staff registration is invalid
└── ReportError       a report's period, grouping or format is not one there is

Errors of the database drivers (sqlite3, psycopg) are translated into StoreError at the boundary
(hub.db), with the driver's error as the cause.
"""

from __future__ import annotations

__all__ = ["HubError", "RegistryError", "ReportError", "SchemaError", "StoreError"]


class HubError(Exception):
    pass


class StoreError(HubError):
    pass


class SchemaError(StoreError):
    """The database's schema version (`found`; None: no hub schema at all) is not `wanted`."""

    def __init__(self, message: str, *, found: int | None, wanted: int) -> None:
        super().__init__(message)
        self.found = found
        self.wanted = wanted


class RegistryError(HubError):
    pass


class ReportError(HubError):
    pass
