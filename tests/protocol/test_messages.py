from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import (
    GENESIS,
    Ack,
    AuthError,
    Channel,
    DecodeError,
    ProtocolError,
    Rating,
    Reason,
    SigningKey,
    Status,
    StatusState,
    decode_ack,
    decode_batch,
    decode_status,
    encode,
    encode_ack,
    encode_status,
    hub_filters,
    limits,
    newer_status,
    parse,
    topic,
    verify_ack,
    verify_batch,
    verify_status,
)
from tests.helpers import batch_bytes, chain
from tests.strategies import HUB_KEY, KEY, acks, chains, statuses


@given(chains())
def test_batch_round_trips_and_verifies(records: list[Rating]) -> None:
    raw = batch_bytes(KEY, records)
    batch = decode_batch(raw)
    verify_batch(batch, KEY.public)
    assert batch.records == tuple(records)
    assert batch.bodies == tuple(r.canonical() for r in records)
    assert batch.hashes == tuple(r.hash() for r in records)
    assert encode(json.loads(raw)) == raw  # the assembled bytes are the canonical encoding
    assert pickle.loads(pickle.dumps(batch)) == batch  # as it comes back from a hub worker process


@given(chains(max_size=6), st.data())
def test_any_changed_byte_of_a_batch_is_detected(records: list[Rating], data: st.DataObject) -> None:
    raw = bytearray(batch_bytes(KEY, records))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ProtocolError):
        verify_batch(decode_batch(bytes(raw)), KEY.public)


@given(chains(max_size=6))
def test_reordering_records_is_detected(records: list[Rating]) -> None:
    if len(records) < 2:
        return
    wire = json.loads(batch_bytes(KEY, records))
    wire["records"][0], wire["records"][1] = wire["records"][1], wire["records"][0]
    with pytest.raises(DecodeError) as caught:
        decode_batch(encode(wire))
    assert caught.value.reason is Reason.BAD_FIELD


def test_a_head_signed_by_another_key_is_a_bad_signature() -> None:
    records = chain(KEY, "d1", 3)
    raw = batch_bytes(SigningKey.generate(), records)
    with pytest.raises(AuthError) as caught:
        verify_batch(decode_batch(raw), KEY.public)
    assert caught.value.reason is Reason.BAD_SIGNATURE


def test_a_record_off_the_chain_is_a_broken_chain() -> None:
    records = chain(KEY, "d1", 3)
    stray = chain(KEY, "d1", 1, first=2, prev="ab" * 32)[0]
    with pytest.raises(AuthError) as caught:
        verify_batch(
            decode_batch(batch_bytes(KEY, [records[0], stray, *chain(KEY, "d1", 1, first=3, prev=stray.hash())])),
            KEY.public,
        )
    assert caught.value.reason is Reason.BROKEN_CHAIN
    assert caught.value.seq == 2


def test_seq_one_must_start_from_genesis() -> None:
    records = chain(KEY, "d1", 2, prev="cd" * 32)
    with pytest.raises(AuthError) as caught:
        verify_batch(decode_batch(batch_bytes(KEY, records)), KEY.public)
    assert caught.value.reason is Reason.BROKEN_CHAIN


def _batch_wire() -> dict[str, Any]:
    wire: dict[str, Any] = json.loads(batch_bytes(KEY, chain(KEY, "d1", 2)))
    return wire


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda w: w.update(v=2), Reason.UNKNOWN_VERSION),
        (lambda w: w.update(type="ack"), Reason.WRONG_TYPE),
        (lambda w: w.update(records=[]), Reason.TOO_MANY_RECORDS),
        (lambda w: w.update(extra=1), Reason.BAD_FIELD),
        (lambda w: w["head"].update(last=5), Reason.BAD_FIELD),
        (lambda w: w["head"].update(device="d2"), Reason.BAD_FIELD),
        (lambda w: w["records"][1].update(device="d2"), Reason.BAD_FIELD),
        (lambda w: w["records"][0].update(score=9), Reason.BAD_FIELD),
        (lambda w: w.update(head=[]), Reason.BAD_FIELD),
    ],
)
def test_batch_structure_errors_have_reasons(mutate: Callable[[dict[str, Any]], None], reason: Reason) -> None:
    wire = _batch_wire()
    mutate(wire)
    with pytest.raises(DecodeError) as caught:
        decode_batch(encode(wire))
    assert caught.value.reason is reason


def test_non_canonical_bytes_are_refused_even_when_the_values_are_right() -> None:
    spaced = json.dumps(_batch_wire(), sort_keys=True, ensure_ascii=False).encode()  # with spaces
    with pytest.raises(DecodeError) as caught:
        decode_batch(spaced)
    assert caught.value.reason is Reason.NOT_CANONICAL


def test_size_limits() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_batch(b" " * (limits.MAX_MESSAGE_BYTES + 1))
    assert caught.value.reason is Reason.OVERSIZE
    wire = _batch_wire()
    wire["records"] = wire["records"] * 251  # 502 records
    with pytest.raises(DecodeError) as caught:
        decode_batch(encode(wire)[: limits.MAX_MESSAGE_BYTES])
    assert caught.value.reason in (Reason.TOO_MANY_RECORDS, Reason.MALFORMED)


def test_a_full_batch_of_500_fits_the_message_limit() -> None:
    records = chain(KEY, "d1", limits.MAX_BATCH_RECORDS)
    raw = batch_bytes(KEY, records)
    assert len(raw) < limits.MAX_MESSAGE_BYTES
    verify_batch(decode_batch(raw), KEY.public)


@given(acks)
def test_ack_round_trips(ack: Ack) -> None:
    raw = encode_ack(ack, HUB_KEY)
    decoded = decode_ack(raw)
    assert decoded == dataclasses.replace(ack, sig=decoded.sig)
    verify_ack(decoded, HUB_KEY.public)
    assert encode_ack(decoded, HUB_KEY) == raw  # Ed25519 is deterministic: the same bytes again
    assert encode(json.loads(raw)) == raw


@given(statuses, st.booleans())
def test_status_round_trips(status: Status, hub: bool) -> None:
    key = HUB_KEY if hub else KEY
    raw = encode_status(status, key, hub=hub)
    decoded = decode_status(raw)
    assert decoded == dataclasses.replace(status, sig=decoded.sig)
    verify_status(decoded, key.public, hub=hub)
    assert encode_status(decoded, key, hub=hub) == raw


def test_ack_and_status_refuse_bad_input() -> None:
    good = encode_ack(Ack(device="d1", upto=3, t=5), HUB_KEY)
    for raw, reason in [
        (good.replace(b'"upto":3', b'"upto":-1'), Reason.BAD_FIELD),
        (good.replace(b'"type":"ack"', b'"type":"batch"'), Reason.WRONG_TYPE),
        (good.replace(b',"v":2', b',"v":9'), Reason.UNKNOWN_VERSION),
        (good.replace(b',"v":2', b',"v":1'), Reason.UNKNOWN_VERSION),
        (good.replace(b"{", b"{ ", 1), Reason.NOT_CANONICAL),
        (good[:-1], Reason.MALFORMED),
    ]:
        assert raw != good
        with pytest.raises(DecodeError) as caught:
            decode_ack(raw)
        assert caught.value.reason is reason, raw
    status = encode_status(Status(device="d1", state=StatusState.ONLINE, session=1), KEY)
    with pytest.raises(DecodeError):
        decode_status(status.replace(b"online", b"asleep"))


@pytest.mark.parametrize(
    ("upto", "held"),
    [
        (0, [2, 2]),
        (5, [7, 9]),
        (5, [7, limits.MAX_SEQ]),
        (limits.MAX_SEQ - 2, [limits.MAX_SEQ, limits.MAX_SEQ]),
    ],
)
def test_an_ack_may_say_what_the_hub_holds_past_a_gap(upto: int, held: list[int]) -> None:
    ack = Ack(device="d1", upto=upto, t=5, held=(held[0], held[1]))
    decoded = decode_ack(encode_ack(ack, HUB_KEY))
    assert decoded.held == ack.held
    verify_ack(decoded, HUB_KEY.public)


@pytest.mark.parametrize(
    ("upto", "held"),
    [
        (5, [6, 9]),  # upto+1 is held: then upto would be 6 or more, and there is no gap
        (5, [5, 9]),
        (5, [3, 9]),
        (5, [0, 9]),
        (5, [9, 8]),  # last before first
        (5, [9]),
        (5, [7, 8, 9]),
        (5, []),
        (5, "7-9"),
        (5, {"first": 7, "last": 9}),
        (5, [7, limits.MAX_SEQ + 1]),
        (5, [True, 9]),
    ],
)
def test_held_must_start_above_upto_plus_one(upto: int, held: object) -> None:
    wire = json.loads(encode_ack(Ack(device="d1", upto=upto, t=5), HUB_KEY))
    wire["held"] = held
    with pytest.raises(DecodeError) as caught:
        decode_ack(encode(wire))
    assert caught.value.reason is Reason.BAD_FIELD


@pytest.mark.parametrize("upto", [limits.MAX_SEQ - 1, limits.MAX_SEQ])
def test_held_has_no_room_right_below_the_largest_seq(upto: int) -> None:
    wire = json.loads(encode_ack(Ack(device="d1", upto=upto, t=5), HUB_KEY))
    wire["held"] = [limits.MAX_SEQ, limits.MAX_SEQ]
    with pytest.raises(DecodeError):
        decode_ack(encode(wire))


def test_a_late_offline_cannot_override_a_fresh_online() -> None:
    online_1 = Status(device="d", state=StatusState.ONLINE, session=1)
    online_2 = Status(device="d", state=StatusState.ONLINE, session=2)
    offline_1 = Status(device="d", state=StatusState.OFFLINE, session=1)
    offline_2 = Status(device="d", state=StatusState.OFFLINE, session=2)
    assert newer_status(None, offline_1)
    assert newer_status(online_1, online_2)
    assert not newer_status(online_2, offline_1)  # the old connection's will, delivered late
    assert newer_status(online_2, offline_2)
    assert not newer_status(online_2, online_1)
    assert newer_status(offline_1, online_2)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True), st.sampled_from(Channel))
def test_topics_round_trip(device: str, channel: Channel) -> None:
    assert parse(topic(device, channel)) == (device, channel)


@pytest.mark.parametrize(
    "name", ["pingjia/v1/d1", "pingjia/v2/d1/ratings", "pingjia/v1/d+/ratings", "pingjia/v1/d1/votes", "x/y/z/w", ""]
)
def test_bad_topics(name: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse(name)
    assert caught.value.reason is Reason.BAD_TOPIC


def test_hub_filters_can_be_shared() -> None:
    plain = ("pingjia/v1/+/ratings", "pingjia/v1/+/status", "pingjia/v1/+/health", "pingjia/v1/+/event")
    assert hub_filters() == plain
    assert hub_filters("hub") == tuple(f"$share/hub/{f}" for f in plain)


def test_genesis_is_64_zero_digits() -> None:
    assert GENESIS == "0" * 64


@given(st.integers(1, 6), st.data())
def test_consecutive_batches_are_authenticated_together_and_a_forged_one_still_fails(
    count: int, data: st.DataObject
) -> None:
    from protocol import verify_batches

    records = chain(KEY, "d1", count * 3)
    batches = [decode_batch(batch_bytes(KEY, records[i * 3 : i * 3 + 3])) for i in range(count)]
    order = data.draw(st.permutations(range(count)))
    shuffled = [batches[i] for i in order]
    assert verify_batches(shuffled, KEY.public) == [None] * count
    # Forge one batch: another key signs the same records' head; then one with a changed record.
    victim = data.draw(st.integers(0, count - 1))
    forged_head = decode_batch(batch_bytes(SigningKey.generate(), records[victim * 3 : victim * 3 + 3]))
    results = verify_batches([*batches[:victim], forged_head, *batches[victim + 1 :]], KEY.public)
    if victim < count - 1:
        assert results[victim] is None  # the records are the genuine ones: the next head vouches for them
    else:
        refused = results[victim]
        assert refused is not None
        assert refused.reason is Reason.BAD_SIGNATURE
    other = chain(KEY, "d1", 3, first=victim * 3 + 1, prev=records[victim * 3].prev, score=1)
    tampered = decode_batch(batch_bytes(SigningKey.generate(), other))
    results = verify_batches([*batches[:victim], tampered, *batches[victim + 1 :]], KEY.public)
    assert results[victim] is not None  # not linked to the next batch, and not signed by the key
    assert all(result is None for index, result in enumerate(results) if index != victim)
