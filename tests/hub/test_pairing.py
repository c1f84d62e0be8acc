"""Pairing at the hub (hub/pairing.py): technicians, credentials, and paired, unpaired and replaced
terminals, on a real database (SQLite; PostgreSQL where marked), through the one writer."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from hub import brokerconf, identity
from hub.errors import HubError, RegistryError, StoreError
from hub.identity import HubKeys
from hub.pairing import (
    MAX_CREDENTIAL_HOURS,
    BrokerAccount,
    PairingError,
    accept_credential,
    add_commands,
    add_technician,
    check_pairable,
    check_replaceable,
    check_technician,
    clerk_of,
    issue_tech_credential,
    register_paired,
    replace,
    revoke_technician,
    unpair,
)
from hub.writer import Writer
from protocol import SealKey, SigningKey
from protocol import console as wire
from tests.hub.conftest import HubDb

NOW = 1_763_800_000_000
HOUR = 3_600_000
KEYS = HubKeys(sign=SigningKey.generate(), seal=SealKey.generate())
OTHER = HubKeys(sign=SigningKey.generate(), seal=SealKey.generate())
OLD_KEY = SigningKey.generate().public.hex
NEW_KEY = SigningKey.generate().public.hex


@pytest.fixture
def hub(hub_db: HubDb) -> HubDb:
    hub_db.writer.write(add_technician, "wang", NOW)
    return hub_db


def pair(hub: HubDb, device: str = "hall1-w03", pubkey: str = OLD_KEY, **kwargs) -> BrokerAccount:
    placed: dict[str, Any] = {
        "site": "hall1",
        "department": "综合受理",
        "counter": "3号窗口",
        "tech": "wang",
        "now_ms": NOW,
    }
    return hub.writer.write(register_paired, device=device, pubkey=pubkey, **(placed | kwargs))


def account(hub: HubDb, username: str) -> tuple | None:
    return hub.one("SELECT role, device, pw_hash, revoked_ms FROM broker_users WHERE username = ?", (username,))


# -- technicians and their credentials -------------------------------------------------------------


def test_a_technician_is_registered_revoked_and_registered_again(hub: HubDb) -> None:
    check_technician(hub.reader.db, "wang")
    with pytest.raises(PairingError, match="no technician 'li'"):
        check_technician(hub.reader.db, "li")
    hub.writer.write(revoke_technician, "wang", NOW + 1)
    with pytest.raises(PairingError, match="revoked"):
        check_technician(hub.reader.db, "wang")
    hub.writer.write(revoke_technician, "wang", NOW + 2)
    assert hub.one("SELECT revoked_ms FROM technicians WHERE name = 'wang'") == (NOW + 1,)
    hub.writer.write(add_technician, "wang", NOW + 3)
    check_technician(hub.reader.db, "wang")
    with pytest.raises(PairingError, match="no technician"):
        hub.writer.write(revoke_technician, "li", NOW)
    with pytest.raises(PairingError, match="printable"):
        hub.writer.write(add_technician, "a\tb", NOW)


def test_technician_writes_run_only_inside_the_writers_transaction(hub: HubDb) -> None:
    with pytest.raises(StoreError, match=r"Writer\.write"):
        add_technician(hub.writer.db, "li", NOW)


def test_a_credential_is_signed_by_the_hub_for_its_hours() -> None:
    credential = wire.decode_credential(issue_tech_credential(KEYS, "wang", 8, NOW))
    assert (credential.tech, credential.hub_sign, credential.exp) == ("wang", KEYS.sign_hex, NOW + 8 * HOUR)
    wire.verify_credential(credential, KEYS.sign.public, NOW + 8 * HOUR)
    for hours in (0, MAX_CREDENTIAL_HOURS + 1):
        with pytest.raises(PairingError, match="hours"):
            issue_tech_credential(KEYS, "wang", hours, NOW)


def test_the_hub_takes_only_its_own_live_credentials_of_active_technicians(hub: HubDb) -> None:
    db = hub.reader.db
    raw = issue_tech_credential(KEYS, "wang", 8, NOW)
    assert accept_credential(db, raw, KEYS.sign.public, NOW).tech == "wang"
    with pytest.raises(PairingError, match="not issued by this hub"):
        accept_credential(db, issue_tech_credential(OTHER, "wang", 8, NOW), KEYS.sign.public, NOW)
    with pytest.raises(PairingError, match="expired"):
        accept_credential(db, raw, KEYS.sign.public, NOW + 8 * HOUR + 1)
    with pytest.raises(PairingError, match="not a technician credential"):
        accept_credential(db, b"hello", KEYS.sign.public, NOW)
    with pytest.raises(PairingError, match="no technician 'li'"):
        accept_credential(db, issue_tech_credential(KEYS, "li", 8, NOW), KEYS.sign.public, NOW)
    hub.writer.write(revoke_technician, "wang", NOW)
    with pytest.raises(PairingError, match="revoked"):
        accept_credential(db, raw, KEYS.sign.public, NOW)


# -- pairing ---------------------------------------------------------------------------------------


def test_a_paired_terminal_is_registered_with_its_own_broker_account(hub: HubDb) -> None:
    made = pair(hub)
    assert made.username == "hall1-w03"
    assert made.password not in repr(made)
    assert hub.one(
        "SELECT pubkey, department, counter, paired_by, revoked_ms, replaced_by FROM devices WHERE id = 'hall1-w03'"
    ) == (OLD_KEY, "综合受理", "3号窗口", "wang", None, None)
    role, device, pw_hash, revoked = account(hub, "hall1-w03") or ()
    assert (role, device, revoked) == ("terminal", "hall1-w03", None)
    assert brokerconf.verify_password(made.password, pw_hash)
    events = hub.rows("SELECT kind, detail FROM device_events WHERE device = 'hall1-w03'")
    assert events == [("paired", "paired by technician wang, 综合受理/3号窗口 at hall1")]


def test_the_password_may_be_chosen_by_the_caller(hub: HubDb) -> None:
    made = pair(hub, password="given-to-the-terminal-already")
    assert made.password == "given-to-the-terminal-already"
    assert brokerconf.verify_password(made.password, (account(hub, "hall1-w03") or ())[2])


def test_pairing_again_moves_the_terminal_and_changes_its_password(hub: HubDb) -> None:
    first = pair(hub)
    second = pair(hub, department="对公业务", counter="7号窗口")
    assert first.password != second.password
    assert hub.rows("SELECT department, counter FROM devices") == [("对公业务", "7号窗口")]
    pw_hash = (account(hub, "hall1-w03") or ())[2]
    assert brokerconf.verify_password(second.password, pw_hash)
    assert not brokerconf.verify_password(first.password, pw_hash)


def test_another_key_under_a_registered_id_is_refused_naming_replace(hub: HubDb) -> None:
    pair(hub)
    with pytest.raises(PairingError, match="tech replace --old hall1-w03"):
        pair(hub, pubkey=NEW_KEY)
    with pytest.raises(PairingError, match="another key"):
        check_pairable(hub.reader.db, "hall1-w03", NEW_KEY)
    assert hub.rows("SELECT pubkey FROM devices") == [(OLD_KEY,)]


@pytest.mark.parametrize(
    ("device", "pubkey", "words"),
    [
        ("pingjia-hub-1", OLD_KEY, "hub accounts"),
        ("claim-x", OLD_KEY, "claim accounts"),
        ("bad/id", OLD_KEY, "device id"),
        ("d1", "zz", "not an Ed25519 key"),
    ],
)
def test_a_terminal_that_cannot_be_registered_is_refused_before_anything_is_written(
    hub: HubDb, device: str, pubkey: str, words: str
) -> None:
    with pytest.raises(PairingError, match=words) as caught:
        check_pairable(hub.reader.db, device, pubkey)
    assert isinstance(caught.value, RegistryError)
    with pytest.raises(PairingError, match=words):
        pair(hub, device=device, pubkey=pubkey)
    assert hub.rows("SELECT id FROM devices") == []
    assert hub.rows("SELECT username FROM broker_users") == []


def test_only_an_active_technician_pairs(hub: HubDb) -> None:
    with pytest.raises(PairingError, match="no technician 'li'"):
        pair(hub, tech="li")
    assert hub.rows("SELECT id FROM devices") == []


# -- unpairing -------------------------------------------------------------------------------------


def test_unpair_revokes_the_key_and_the_account_and_pairing_again_restores_them(hub: HubDb) -> None:
    pair(hub)
    hub.writer.write(unpair, "hall1-w03", NOW + 10, "wang")
    assert hub.one("SELECT revoked_ms FROM devices") == (NOW + 10,)
    assert (account(hub, "hall1-w03") or ())[3] == NOW + 10
    hub.writer.write(unpair, "hall1-w03", NOW + 20, "wang")  # again: the first revocation stays
    assert hub.one("SELECT revoked_ms FROM devices") == (NOW + 10,)
    kinds = [kind for (kind,) in hub.rows("SELECT kind FROM device_events ORDER BY at_ms")]
    assert kinds == ["paired", "unpaired", "unpaired"]
    with pytest.raises(PairingError, match="not registered"):
        hub.writer.write(unpair, "hall1-w99", NOW, "wang")
    pair(hub)  # the same terminal (same key) may be paired again after an unpair
    assert hub.one("SELECT revoked_ms FROM devices") == (None,)
    assert (account(hub, "hall1-w03") or ())[3] is None


def test_a_terminal_without_a_broker_account_is_unpaired_too(hub: HubDb) -> None:
    from hub import registry

    hub.writer.write(registry.add_device, "d1", OLD_KEY)  # registered by hand, before closed fleets
    hub.writer.write(unpair, "d1", NOW, "wang")
    assert hub.one("SELECT revoked_ms FROM devices") == (NOW,)


# -- replacing -------------------------------------------------------------------------------------


def test_replace_moves_the_place_and_the_clerk_and_revokes_the_old_terminal(hub: HubDb) -> None:
    pair(hub)
    health = {"device": "hall1-w03", "staff": "E1024", "type": "health", "v": 2}
    hub.writer.write(lambda db: db.execute("UPDATE devices SET health = ?", (json.dumps(health),)))
    placement = check_replaceable(hub.reader.db, "hall1-w03", "hall1-w03b", NEW_KEY)
    assert (placement.department, placement.counter, placement.clerk) == ("综合受理", "3号窗口", "E1024")
    made = hub.writer.write(replace, "hall1-w03", "hall1-w03b", NEW_KEY, "wang", NOW + 5)
    assert made.username == "hall1-w03b"
    rows = hub.rows(
        "SELECT id, pubkey, department, counter, revoked_ms, replaced_by, paired_by FROM devices ORDER BY id"
    )
    assert rows == [
        ("hall1-w03", OLD_KEY, "综合受理", "3号窗口", NOW + 5, "hall1-w03b", "wang"),
        ("hall1-w03b", NEW_KEY, "综合受理", "3号窗口", None, None, "wang"),
    ]
    assert (account(hub, "hall1-w03") or ())[3] == NOW + 5
    assert (account(hub, "hall1-w03b") or ())[3] is None
    assert brokerconf.verify_password(made.password, (account(hub, "hall1-w03b") or ())[2])
    with pytest.raises(PairingError, match="replaced by hall1-w03b already"):
        hub.writer.write(replace, "hall1-w03", "hall1-w03c", SigningKey.generate().public.hex, "wang", NOW + 6)
    with pytest.raises(PairingError, match="cannot be paired again"):
        pair(hub)


def test_a_terminal_replaced_after_an_unpair_keeps_its_first_revocation(hub: HubDb) -> None:
    pair(hub)
    hub.writer.write(unpair, "hall1-w03", NOW + 1, "wang")
    hub.writer.write(replace, "hall1-w03", "hall1-w03b", NEW_KEY, "wang", NOW + 2)
    assert hub.one("SELECT revoked_ms, replaced_by FROM devices WHERE id = 'hall1-w03'") == (NOW + 1, "hall1-w03b")


def test_replace_refuses_what_it_cannot_do(hub: HubDb) -> None:
    with pytest.raises(PairingError, match="not registered"):
        check_replaceable(hub.reader.db, "hall1-w03", "hall1-w03b", NEW_KEY)
    pair(hub)
    pair(hub, device="hall1-w04", pubkey=NEW_KEY)
    with pytest.raises(PairingError, match="cannot replace itself"):
        check_replaceable(hub.reader.db, "hall1-w03", "hall1-w03", OLD_KEY)
    with pytest.raises(PairingError, match="another key"):  # w04 is someone else's id
        hub.writer.write(replace, "hall1-w03", "hall1-w04", SigningKey.generate().public.hex, "wang", NOW)
    assert hub.rows("SELECT id FROM devices WHERE replaced_by IS NOT NULL") == []


def test_the_clerk_is_read_from_the_latest_health(hub: HubDb) -> None:
    pair(hub)
    assert clerk_of(hub.reader.db, "hall1-w03") is None
    assert clerk_of(hub.reader.db, "nobody") is None
    hub.writer.write(lambda db: db.execute("UPDATE devices SET health = ?", ("not json",)))
    assert clerk_of(hub.reader.db, "hall1-w03") is None


# -- the commands ----------------------------------------------------------------------------------


def hub_command(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="pingjia hub")
    add_commands(parser.add_subparsers(dest="hub_command", required=True))
    args = parser.parse_args(list(argv))
    capsys.readouterr()
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_commands_add_a_technician_and_issue_a_credential(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    Writer.open(db, migrate=True).close()
    keys = identity.create(tmp_path / "hub.key")
    code, out, _ = hub_command(capsys, "add-technician", "--db", db, "--name", "wang")
    assert code == 0
    assert json.loads(out)["technician"] == "wang"
    code, out, _ = hub_command(
        capsys, "tech-credential", "--db", db, "--name", "wang", "--hours", "2", "--hub-key", str(tmp_path / "hub.key")
    )
    assert code == 0
    credential = wire.decode_credential(out.encode())
    assert credential.tech == "wang"
    wire.verify_credential(credential, keys.sign.public, NOW)
    code, out, err = hub_command(
        capsys, "tech-credential", "--db", db, "--name", "li", "--hub-key", str(tmp_path / "hub.key")
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "no technician 'li'" in err
    code, _, _ = hub_command(capsys, "revoke-technician", "--db", db, "--name", "wang")
    assert code == 0
    code, out, err = hub_command(
        capsys, "tech-credential", "--db", db, "--name", "wang", "--hub-key", str(tmp_path / "hub.key")
    )
    assert code == 2
    assert "revoked" in err
    code, _, err = hub_command(
        capsys, "tech-credential", "--db", db, "--name", "wang", "--hub-key", str(tmp_path / "x")
    )
    assert code == 2
    assert "no hub key" in err
    assert isinstance(PairingError("x"), HubError)
