"""The hub's exception tree (wire-level refusals use protocol.ProtocolError and its reason codes).

HubError
├── StoreError      the database cannot be opened, migrated, read or written
└── RegistryError   a device or staff registration is invalid
"""

from __future__ import annotations

__all__ = ["HubError", "RegistryError", "StoreError"]


class HubError(Exception):
    pass


class StoreError(HubError):
    pass


class RegistryError(HubError):
    pass
