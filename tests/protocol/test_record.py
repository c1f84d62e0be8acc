from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import DecodeError, Kind, Rating, Reason, SigningKey, decode, encode, rating_from_wire
from tests.strategies import KEY, ratings


@given(ratings())
def test_record_round_trips_through_canonical_bytes(record: Rating) -> None:
    signed = record.signed(KEY)
    raw = signed.canonical()
    again = rating_from_wire(decode(raw))
    assert again == signed
    assert again.canonical() == raw
    assert again.verify(KEY.public)


@given(ratings(), st.data())
def test_changing_any_field_after_signing_is_detected(record: Rating, data: st.DataObject) -> None:
    signed = record.signed(KEY)
    wire = signed.wire()
    key = data.draw(st.sampled_from(sorted(k for k in wire if k != "sig")))
    value = wire[key]
    if isinstance(value, bool):
        changed: Any = not value
    elif isinstance(value, dict):  # subscores: one level moves
        name = sorted(value)[0]
        changed = {**value, name: value[name] % 5 + 1}
    elif isinstance(value, int):
        changed = value + 1 if value < 2**53 - 2 else value - 1
    elif isinstance(value, list):
        changed = value[:-1] if len(value) > 1 else value * 2
    else:
        changed = value[:-1] + ("0" if value[-1] != "0" else "1")
    tampered = {**wire, key: changed}
    try:
        decoded = rating_from_wire(tampered)
    except DecodeError:
        return  # the change made the record invalid: also detected
    assert not decoded.verify(KEY.public)
    assert decoded.hash() != signed.hash()


@given(ratings())
def test_a_signature_from_another_key_does_not_verify(record: Rating) -> None:
    assert not record.signed(SigningKey.generate()).verify(KEY.public)


@given(ratings(), st.data())
def test_flipping_any_byte_of_the_canonical_record_is_detected(record: Rating, data: st.DataObject) -> None:
    raw = bytearray(record.signed(KEY).canonical())
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        decoded = rating_from_wire(decode(bytes(raw)))
    except DecodeError:
        return
    assert not decoded.verify(KEY.public)


def _wire(**changes: Any) -> dict[str, Any]:
    base = Rating(
        device="d1", seq=5, kind=Kind.PRESS, t=1, boot="b", mono=2, fw="1", prev="0" * 64, staff="E1", score=4
    ).signed(KEY)
    wire = base.wire()
    for key, value in changes.items():
        if value is ...:
            del wire[key]
        else:
            wire[key] = value
    return wire


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"seq": 0}, "seq must be an integer in 1.."),
        ({"seq": 2**63}, "seq must be an integer"),
        ({"seq": True}, "seq must be an integer"),
        ({"score": 6}, "score must be an integer in 1..5"),
        ({"score": None}, "score must be an integer"),
        ({"kind": "vote"}, "kind must be one of"),
        ({"device": "a/b"}, "device id"),
        ({"device": "x" * 65}, "device id"),
        ({"staff": ""}, "staff must be 1..64 printable"),
        ({"staff": "a\nb"}, "staff must be 1..64 printable"),
        ({"prev": "AB" * 32}, "prev must be 64 lowercase hex"),
        ({"sig": "00"}, "sig must be 128 lowercase hex"),
        ({"reasons": []}, "reasons must be"),
        ({"reasons": [1, 1]}, "reasons must be"),
        ({"reasons": [1, 2, 3, 4, 5, 6, 7]}, "reasons must be 1..6 distinct"),
        ({"subscores": [["attitude", 5]]}, "subscores must be a JSON object, got list"),
        ({"subscores": 5}, "subscores must be a JSON object, got int"),
        ({"subscores": {}}, "subscores must not be empty"),
        ({"subscores": {"mood": 3}}, "subscores: unknown indicators ['mood']; known: attitude, efficiency, competence"),
        ({"subscores": {"attitude": 6}}, "subscores attitude must be an integer in 1..5, got 6"),
        ({"subscores": {"efficiency": 0}}, "subscores efficiency must be an integer in 1..5, got 0"),
        ({"subscores": {"competence": True}}, "subscores competence must be an integer in 1..5, got True"),
        ({"subscores": {"attitude": "5"}}, "subscores attitude must be an integer in 1..5"),
        (
            {"subscores": {"attitude": 4}, "kind": "timeout", "score": ...},
            "a timeout record has no score, amends, reasons or subscores",
        ),
        ({"flags": ["misuse", "misuse"]}, "flags must be"),
        ({"flags": ["uninvited", "misuse"]}, "flags must be"),
        ({"flags": ["fake"]}, "flags must be"),
        ({"contact": "not base64!"}, "contact must be base64"),
        ({"extra": 1}, "unknown ['extra']"),
        ({"boot": ...}, "missing ['boot']"),
        ({"amends": 3}, "only amend records carry amends"),
        ({"kind": "timeout"}, "a timeout record has no score"),
        ({"kind": "amend"}, "an amend record names the seq"),
        ({"kind": "amend", "amends": 5}, "amends must be an integer in 1..4"),
        ({"score": ..., "kind": "timeout", "staff": ...}, "names the staff member who invited"),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(DecodeError) as caught:
        rating_from_wire(_wire(**changes))
    assert caught.value.reason is Reason.BAD_FIELD
    assert fragment in caught.value.detail


def test_an_unknown_version_is_its_own_reason() -> None:
    with pytest.raises(DecodeError) as caught:
        rating_from_wire(_wire(v=2))
    assert caught.value.reason is Reason.UNKNOWN_VERSION


def test_optional_fields_at_their_defaults_are_omitted_from_the_wire() -> None:
    record = Rating(device="d", seq=1, kind=Kind.PRESS, t=0, boot="b", mono=0, fw="1", prev="0" * 64, score=5)
    assert set(record.wire()) == {"v", "device", "seq", "kind", "t", "boot", "mono", "fw", "prev", "sig", "score"}
    assert b" " not in encode(record.wire())


def test_six_reasons_and_every_sub_score_decode() -> None:
    wire = _wire(reasons=[1, 2, 3, 4, 5, 6], subscores={"competence": 3, "attitude": 5, "efficiency": 1})
    record = rating_from_wire(wire)
    assert record.reasons == (1, 2, 3, 4, 5, 6)
    assert record.subscores == (("attitude", 5), ("competence", 3), ("efficiency", 1))
    assert record.wire()["subscores"] == {"attitude": 5, "competence": 3, "efficiency": 1}
    assert b'"subscores":{"attitude":5,"competence":3,"efficiency":1}' in record.canonical()


def test_the_signature_covers_every_field_but_itself() -> None:
    record = Rating(device="d", seq=1, kind=Kind.PRESS, t=0, boot="b", mono=0, fw="1", prev="0" * 64, score=5)
    signed = record.signed(KEY)
    assert b'"sig"' not in signed.signing_bytes()
    for field in dataclasses.fields(Rating):
        if field.name != "sig":
            assert field.name in signed.unsigned_wire() or getattr(signed, field.name) in (None, ())
