from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from device import identity
from device.errors import IdentityError, StateError
from device.state import StateDocument


def test_settings_survive_reopening_and_each_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = StateDocument(path)
    settings.update(staff="E1", staff_since_ms=5)
    settings.update(staff="E2")
    settings.close()
    # A crash mid-write leaves at most a stray temporary file; the document itself is intact.
    (tmp_path / "settings.json.tmp").write_text('{"terminal": {"1": {"staff": "E', encoding="utf-8")
    again = StateDocument(path)
    assert again.read() == {"staff": "E2", "staff_since_ms": 5}


def test_a_corrupt_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(StateError, match="is not valid JSON"):
        StateDocument(path).read()


def test_identity_key_is_private_and_the_id_is_derived_from_it(tmp_path: Path) -> None:
    made = identity.create(tmp_path / "t")
    mode = stat.S_IMODE((tmp_path / "t" / identity.KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert made.device.startswith("pj-")
    loaded = identity.load(tmp_path / "t")
    assert loaded.device == made.device
    assert loaded.public_hex == made.public_hex


def test_creating_twice_is_refused(tmp_path: Path) -> None:
    identity.create(tmp_path / "t", "c1")
    with pytest.raises(IdentityError, match="already has an identity"):
        identity.create(tmp_path / "t", "c1")


def test_a_bad_device_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match=r"must be 1\.\.64"):
        identity.create(tmp_path / "t", "has space")


def test_a_lost_outbox_is_refused_rather_than_reusing_seqs(tmp_path: Path) -> None:
    identity.create(tmp_path / "t", "c1")
    os.remove(tmp_path / "t" / identity.OUTBOX_FILE)
    loaded = identity.load(tmp_path / "t")
    with pytest.raises(IdentityError, match="refusing to restart seqs"):
        identity.open_outbox(loaded)


def test_a_swapped_outbox_is_refused(tmp_path: Path) -> None:
    identity.create(tmp_path / "a", "c1")
    identity.create(tmp_path / "b", "c1")
    os.replace(tmp_path / "b" / identity.OUTBOX_FILE, tmp_path / "a" / identity.OUTBOX_FILE)
    loaded = identity.load(tmp_path / "a")
    with pytest.raises(IdentityError, match="is not the one made with this identity"):
        identity.open_outbox(loaded)


def test_a_readable_key_is_refused(tmp_path: Path) -> None:
    identity.create(tmp_path / "t", "c1")
    os.chmod(tmp_path / "t" / identity.KEY_FILE, 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        identity.load(tmp_path / "t")


def test_the_first_start_makes_the_identity_and_a_later_start_keeps_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    def start() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pingjia",
                "device",
                "run",
                "--data",
                str(tmp_path / "t"),
                "--id",
                "w01",
                "--events",
                "jsonl",
            ],
            input="quit\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    first = start()
    assert first.returncode == 0, first.stderr
    assert "new identity w01" in first.stderr
    key = (tmp_path / "t" / identity.KEY_FILE).read_bytes()
    second = start()
    assert second.returncode == 0, second.stderr
    assert "new identity" not in second.stderr
    assert (tmp_path / "t" / identity.KEY_FILE).read_bytes() == key
    os.remove(tmp_path / "t" / identity.OUTBOX_FILE)
    third = start()
    assert third.returncode == 2
    assert "refusing to restart seqs" in third.stderr
