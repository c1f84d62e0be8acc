"""The registry (hub.registry): write functions the CLI, the simulator and tests run through a writer."""

from __future__ import annotations

import pytest

from hub import registry
from hub.errors import HubError, RegistryError, StoreError
from protocol import SigningKey
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()


def test_registering_a_device_again_with_another_key_is_refused(hub_db: HubDb) -> None:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="综合受理")
    with pytest.raises(RegistryError, match="another key"):
        hub_db.writer.write(registry.add_device, "d1", SigningKey.generate().public.hex)
    with pytest.raises(RegistryError, match=r"not an Ed25519 key|hex"):
        hub_db.writer.write(registry.add_device, "d2", "zz")


@pytest.mark.parametrize("pubkey", ["zz", "ab" * 31, "ab" * 33, "", "é" * 64])
def test_a_key_that_is_not_an_ed25519_public_key_is_a_registry_error(pubkey: str) -> None:
    with pytest.raises(RegistryError, match="is not an Ed25519 key") as caught:
        registry.check_device("d1", pubkey)
    assert isinstance(caught.value, HubError)


def test_a_device_moves_to_another_counter_and_a_clerk_to_another_department(hub_db: HubDb) -> None:
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="A", counter="1")
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="B", counter="2")
    hub_db.writer.write(registry.add_staff, "E1", name="王芳", department="A")
    hub_db.writer.write(registry.add_staff, "E1", name="王芳", department="B")
    assert hub_db.rows("SELECT id, department, counter FROM devices") == [("d1", "B", "2")]
    assert hub_db.reader.staff_names() == {"E1": ("王芳", "B")}


@pytest.mark.parametrize(("staff", "department"), [("", "A"), ("E" * 65, "A"), ("E\n1", "A"), ("E1", "")])
def test_a_bad_staff_registration_is_refused(hub_db: HubDb, staff: str, department: str) -> None:
    with pytest.raises(RegistryError):
        hub_db.writer.write(registry.add_staff, staff, department=department)


def test_registry_writes_run_only_inside_the_writers_transaction(hub_db: HubDb) -> None:
    with pytest.raises(StoreError, match=r"Writer\.write"):
        registry.add_staff(hub_db.writer.db, "E1", department="A")
    assert hub_db.reader.staff_names() == {}
