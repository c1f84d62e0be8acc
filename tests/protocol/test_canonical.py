from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import DecodeError, Reason, decode, encode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_encoding_round_trips_and_is_stable(value: object) -> None:
    raw = encode(value)
    assert decode(raw) == value
    assert encode(decode(raw)) == raw


def test_keys_are_sorted_and_there_is_no_whitespace() -> None:
    assert encode({"b": 1, "a": [1, {"d": None, "c": "汉"}]}) == '{"a":[1,{"c":"汉","d":null}],"b":1}'.encode()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"a":1.5}', "not an integer"),
        (b'{"a":1e3}', "not an integer"),
        (b'{"a":NaN}', "not valid JSON"),
        (b'{"a":Infinity}', "not valid JSON"),
        (b'{"a":1,"a":2}', "duplicate key"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a":', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_strict_decoding_names_the_problem(raw: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(raw)
    assert caught.value.reason is Reason.MALFORMED
    assert fragment in caught.value.detail
