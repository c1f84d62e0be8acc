"""The terminal's stored state: a small document (identity, the clerk's binding, staff cards) in
TinyDB, written atomically. (Its settings, which an operator sets, are device.config.)

TinyDB's own JSON storage rewrites the file in place, so a power cut mid-write can leave it empty or
half written. This storage writes a temporary file, fsyncs it, renames it over the old one and
fsyncs the directory: after a crash the file holds either the old document or the new one.
Only small documents belong here; ratings live in the outbox (SQLite).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from device.errors import StateError

__all__ = ["AtomicJSONStorage", "StateDocument"]


class AtomicJSONStorage(Storage):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(f"{self.path} is not valid JSON ({exc.msg}); restore it or re-pair") from exc
        if not isinstance(data, dict):
            raise StateError(f"{self.path} does not hold a settings document")
        return data

    def write(self, data: dict[str, Any]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        # The document may hold the terminal's broker password: it is never readable by others,
        # whatever the umask (and a mode set on the old file is not lost by the rename).
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def close(self) -> None:
        return None


class StateDocument:
    """One document of named values; each `update` is one atomic write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = TinyDB(str(path), storage=AtomicJSONStorage)
        self._table = self._db.table("terminal")

    def read(self) -> dict[str, Any]:
        document = self._table.get(doc_id=1)
        return dict(document) if document is not None else {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.read().get(key, default)

    def update(self, **values: Any) -> None:
        merged = {**self.read(), **values}
        try:
            self._table.upsert(Document(merged, doc_id=1))
        except OSError as exc:
            raise StateError(f"cannot write {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()
