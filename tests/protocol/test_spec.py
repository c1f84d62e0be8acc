"""The examples in protocol/README.md are test vectors: they must decode and verify as written."""

from __future__ import annotations

import re
from pathlib import Path

from protocol import (
    VerifyKey,
    decode,
    decode_ack,
    decode_batch,
    decode_status,
    leaf_hash,
    rating_from_wire,
    verify_batch,
)

SPEC = (Path(__file__).parents[2] / "protocol" / "README.md").read_text(encoding="utf-8")
BLOCKS = [line for block in re.findall(r"```json\n(.*?)```", SPEC, re.S) for line in block.splitlines() if line]


def test_the_example_record_batch_ack_and_status_verify_with_the_documented_key() -> None:
    key = VerifyKey.from_hex(re.search(r"public key\n`([0-9a-f]{64})`", SPEC)[1])  # type: ignore[index]
    record_line, _shape, batch_line, ack_line, reject_line, status_line = BLOCKS
    record = rating_from_wire(decode(record_line.encode()))
    assert record.verify(key)
    assert leaf_hash(record_line.encode()) in SPEC
    batch = decode_batch(batch_line.encode())
    verify_batch(batch, key)
    assert batch.bodies[0] == record_line.encode()
    assert all(r.verify(key) for r in batch.records)
    assert decode_ack(ack_line.encode()).upto == 2
    assert decode_ack(reject_line.encode()).rejects[0].seq == 3
    assert decode_status(status_line.encode()).session == 16777217
