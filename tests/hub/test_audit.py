"""The audit (hub.audit): what the batch check does not check, checked record by record."""

from __future__ import annotations

from hub import registry
from hub.audit import audit
from protocol import Channel, Kind, Rating, SigningKey, encode, leaf_hash, seal_batch, topic
from tests.hub.conftest import HubDb

KEY = SigningKey.generate()
NOW = 1_763_800_000_000


def test_audit_finds_a_record_whose_own_signature_is_wrong(hub_db: HubDb) -> None:
    # A batch authenticates via its head; a record with a bad own signature inside a validly
    # signed chain is stored, and the audit is what reports it.
    hub_db.writer.write(registry.add_device, "d1", KEY.public.hex, department="综合受理", counter="3号窗口")
    bad = Rating(
        device="d1",
        seq=1,
        kind=Kind.PRESS,
        t=NOW,
        boot="b",
        mono=1,
        fw="1",
        prev="0" * 64,
        staff="E1",
        score=5,
        sig="ab" * 64,
    )
    body = encode(bad.wire())
    hub_db.receive(topic("d1", Channel.RATINGS), seal_batch(KEY, "d1", 1, [body], leaf_hash(body)), NOW)
    result = audit(hub_db.reader)
    assert result["records"] == 1
    assert result["problems"][0]["problem"] == "signature does not verify with the registered key"
