"""The technician console's format (protocol/console.py) and its spec (protocol/CONSOLE.md).

Run as a module (`python -m tests.protocol.test_console`) it rewrites CONSOLE.md's generated tables.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import example, given
from hypothesis import strategies as st

from protocol import AuthError, DecodeError, ProtocolError, Reason, SigningKey, canonical, limits
from protocol import console as wire
from protocol.spec import meanings_table, refresh
from tests.strategies import device_ids, printable

SPEC_PATH = Path(__file__).parents[2] / "protocol" / "CONSOLE.md"
TEST_KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
HUB = SigningKey.generate()
OTHER_HUB = SigningKey.generate()


def _op_tables(op: wire.Op) -> str:
    return (
        f"request:\n\n{wire.params_table(wire.REQUEST_PARAMS[op])}\n\n"
        f"response:\n\n{wire.params_table(wire.REPLY_PARAMS[op])}"
    )


BLOCKS: dict[str, Callable[[], str]] = {
    **{op.value: functools.partial(_op_tables, op) for op in wire.Op},
    "refusal": lambda: wire.params_table(wire.REFUSAL_PARAMS),
    "codes": lambda: meanings_table(wire.ConsoleCode, wire.MEANING, "error"),
    "credential": lambda: wire.params_table(wire.CREDENTIAL_FIELDS),
}


def frame_of(obj: dict[str, Any]) -> bytes:
    """Any JSON value framed with a correct CRC: what gets past the line's check."""
    body = canonical.encode(obj)
    return body + b"*" + f"{wire.crc32(body):08x}".encode() + b"\n"


# -- strategies ------------------------------------------------------------------------------------

ids = st.integers(1, wire.MAX_ID)
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
codes = st.from_regex(r"[0-9]{6}", fullmatch=True)
places = printable
credentials = st.builds(
    wire.TechCredential,
    tech=printable,
    hub_sign=hex64,
    exp=st.integers(0, limits.MAX_MS),
    sig=st.binary(min_size=64, max_size=64).map(bytes.hex),
)
pems = st.text(alphabet="ABCDEFGHabcdefgh0123456789+/=\n", max_size=200).map(
    lambda body: f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
)
versions = st.lists(st.integers(1, 65535), min_size=1, max_size=8, unique=True).map(tuple)
requests = st.one_of(
    st.builds(wire.HelloRequest, id=ids, versions=versions),
    st.builds(wire.InfoRequest, id=ids),
    st.builds(
        wire.PairRequest,
        id=ids,
        code=codes,
        credential=credentials,
        hub_sign=hex64,
        hub_seal=hex64,
        broker=printable,
        username=printable,
        password=printable,
        department=places,
        counter=places,
        site=st.none() | places,
        tls_ca=st.none() | pems,
        staff=st.none() | printable,
    ),
    st.builds(wire.IdentifyRequest, id=ids, credential=credentials),
    st.builds(wire.UnpairRequest, id=ids, credential=credentials),
)


@st.composite
def info_replies(draw: st.DrawFn) -> wire.InfoReply:
    paired = draw(st.booleans())
    return wire.InfoReply(
        id=draw(ids),
        device=draw(device_ids),
        pubkey=draw(hex64),
        fw=draw(st.text(alphabet="0123456789.abcv-", min_size=1, max_size=32)),
        paired=paired,
        code=draw(codes),
        code_left_ms=draw(st.integers(0, wire.CODE_LIFETIME_MS)),
        hub=draw(hex64)[:16] if paired else None,
        site=draw(st.none() | places) if paired else None,
        department=draw(places) if paired else None,
        counter=draw(places) if paired else None,
    )


responses = st.one_of(
    st.builds(wire.HelloReply, id=ids, v=st.integers(1, 65535), device=device_ids, fw=st.just("0.1.0")),
    info_replies(),
    st.builds(
        wire.Done, id=ids, op=st.sampled_from([wire.Op.PAIR, wire.Op.IDENTIFY, wire.Op.UNPAIR]), device=device_ids
    ),
    st.builds(
        wire.Refusal,
        error=st.sampled_from(wire.ConsoleCode),
        detail=st.text(min_size=1, max_size=limits.MAX_DETAIL_CHARS).filter(str.isprintable),
        id=st.none() | ids,
        op=st.none() | st.sampled_from(wire.Op),
        versions=st.just(()) | versions,
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def outcome(decode: Callable[[bytes], Any], data: bytes) -> Any:
    """What `decode` returns, or the ConsoleError it raises; anything else it raises fails the test."""
    try:
        return decode(data)
    except wire.ConsoleError as exc:
        return exc


# -- round trips -----------------------------------------------------------------------------------


@given(requests)
def test_every_request_comes_back_as_itself(request: wire.Request) -> None:
    frame = wire.encode_request(request)
    assert frame.endswith(b"\n")
    assert frame.count(b"\n") == 1
    assert wire.decode_request(frame) == request
    assert wire.decode_request(frame[:-1]) == request  # as FrameSplitter hands it over


@given(responses)
def test_every_response_comes_back_as_itself(response: wire.Response) -> None:
    frame = wire.encode_response(response)
    assert frame.count(b"\n") == 1
    assert wire.decode_response(frame) == response


@given(st.lists(requests, min_size=1, max_size=5), st.data())
def test_a_stream_cut_anywhere_gives_the_same_frames(batch: list[wire.Request], data: st.DataObject) -> None:
    stream = b"\n" + b"".join(map(wire.encode_request, batch))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    splitter = wire.FrameSplitter()
    lines: list[bytes | wire.ConsoleError] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        lines += splitter.feed(stream[start:end])
    assert [wire.decode_request(line) for line in lines if isinstance(line, bytes)] == batch
    assert len(lines) == len(batch)


# -- nothing but ConsoleError ----------------------------------------------------------------------


@given(st.binary(max_size=300))
@example(b"*00000000")
@example(b"[]*%08x" % wire.crc32(b"[]"))
@example(b"\xff*%08x" % wire.crc32(b"\xff"))
def test_arbitrary_bytes_raise_nothing_but_console_error(data: bytes) -> None:
    for decode in (wire.decode_request, wire.decode_response, wire.decode_credential):
        error = outcome(decode, data)
        assert isinstance(error, wire.ConsoleError)
        assert isinstance(error, DecodeError)  # a console error is a protocol error
        assert isinstance(error, ProtocolError)
        assert error.code in wire.ConsoleCode


@given(json_values)
def test_any_json_with_a_good_crc_raises_nothing_but_console_error(value: Any) -> None:
    for decode in (wire.decode_request, wire.decode_response):
        outcome(decode, frame_of(value))


@given(requests, st.data())
def test_a_valid_request_with_one_field_changed_raises_nothing_but_console_error(
    request: wire.Request, data: st.DataObject
) -> None:
    obj = canonical.decode(wire.encode_request(request).rpartition(b"*")[0])
    name = data.draw(st.sampled_from(sorted(obj)) | st.text(max_size=8))
    obj[name] = data.draw(json_values)
    decoded = outcome(wire.decode_request, frame_of(obj))
    if not isinstance(decoded, wire.ConsoleError):  # taken only if it is canonical and valid
        assert wire.encode_request(decoded) == frame_of(obj)


@given(st.binary(max_size=2 * wire.MAX_FRAME_BYTES), st.data())
def test_the_splitter_never_raises_and_never_hands_over_a_line_over_the_limit(data: bytes, draw: st.DataObject) -> None:
    splitter = wire.FrameSplitter()
    cut = draw.draw(st.integers(0, len(data)))
    lines = splitter.feed(data[:cut]) + splitter.feed(data[cut:])
    for line in lines:
        if isinstance(line, bytes):
            assert line
            assert b"\n" not in line
            assert len(line) < wire.MAX_FRAME_BYTES
        else:
            assert line.code is wire.ConsoleCode.OVERSIZE


# -- each error says what it is --------------------------------------------------------------------


def refused(line: bytes) -> wire.ConsoleError:
    with pytest.raises(wire.ConsoleError) as caught:
        wire.decode_request(line)
    return caught.value


def test_a_bad_crc_is_named_with_both_values() -> None:
    error = refused(b'{"id":2,"op":"info","v":1}*00000000\n')
    assert error.code is wire.ConsoleCode.BAD_CRC
    assert "00000000" in error.detail
    assert "1c454c86" in error.detail
    assert error.id is None  # nothing of a damaged frame is believed


def test_an_oversize_frame_is_refused_before_it_is_read() -> None:
    big = frame_of({"id": 1, "op": "info", "v": 1, "pad": "x" * wire.MAX_FRAME_BYTES})
    assert refused(big).code is wire.ConsoleCode.OVERSIZE
    splitter = wire.FrameSplitter()
    lines = splitter.feed(big + wire.encode_request(wire.InfoRequest(id=9)))
    assert isinstance(lines[0], wire.ConsoleError)
    assert lines[0].code is wire.ConsoleCode.OVERSIZE
    assert (
        lines[1] == wire.encode_request(wire.InfoRequest(id=9))[:-1]
    )  # in step again after the newline  # in step again after the newline


def test_an_unknown_op_is_named_and_its_id_kept() -> None:
    error = refused(frame_of({"id": 7, "op": "reboot", "v": 1}))
    assert error.code is wire.ConsoleCode.UNKNOWN_OP
    assert "'reboot'" in error.detail
    assert error.id == 7
    assert wire.refusal_for(error).id == 7


def test_another_version_is_refused_naming_what_the_terminal_speaks() -> None:
    error = refused(frame_of({"id": 4, "op": "info", "v": 2}))
    assert error.code is wire.ConsoleCode.BAD_VERSION
    assert error.versions == wire.VERSIONS
    assert error.reason is Reason.UNKNOWN_VERSION
    refusal = wire.refusal_for(error)
    assert (refusal.id, refusal.op, refusal.versions) == (4, wire.Op.INFO, wire.VERSIONS)


def test_missing_and_unknown_fields_are_named() -> None:
    credential = wire.decode_credential(wire.issue_credential(HUB, "wang", 10**13))
    obj = canonical.decode(wire.encode_request(wire.UnpairRequest(id=3, credential=credential))[:-10])
    del obj["credential"]
    obj["extra"] = 1
    error = refused(frame_of(obj))
    assert error.code is wire.ConsoleCode.BAD_FIELD
    assert "missing ['credential']" in error.detail
    assert "'extra'" in error.detail
    assert (error.id, error.op) == (3, wire.Op.UNPAIR)


def test_hello_carries_no_version_and_json_must_be_canonical() -> None:
    assert refused(frame_of({"id": 1, "op": "hello", "v": 1, "versions": [1]})).code is wire.ConsoleCode.BAD_FIELD
    spaced = b'{"id": 2, "op": "info", "v": 1}'
    assert refused(spaced + b"*" + f"{wire.crc32(spaced):08x}".encode()).code is wire.ConsoleCode.MALFORMED


def test_an_info_reply_names_its_place_when_and_only_when_paired() -> None:
    good = wire.InfoReply(id=1, device="d1", pubkey="a" * 64, fw="1", paired=False, code="000001", code_left_ms=1)
    obj = canonical.decode(wire.encode_response(good).rpartition(b"*")[0])
    with pytest.raises(wire.ConsoleError, match="when \\(and only when\\) paired"):
        wire.decode_response(frame_of({**obj, "paired": True}))
    with pytest.raises(wire.ConsoleError, match="when \\(and only when\\) paired"):
        wire.decode_response(frame_of({**obj, "department": "x"}))


def test_a_version_is_chosen_as_the_highest_both_speak() -> None:
    assert wire.choose_version((1, 2, 3), (1, 2)) == 2
    assert wire.choose_version((3,), (1, 2)) is None


# -- the credential --------------------------------------------------------------------------------


def test_a_credential_verifies_with_its_hub_until_it_expires() -> None:
    raw = wire.issue_credential(HUB, "wang", 1_000)
    credential = wire.decode_credential(raw)
    assert credential.tech == "wang"
    assert credential.hub_sign == HUB.public.hex
    wire.verify_credential(credential, HUB.public, 1_000)
    with pytest.raises(AuthError) as stale:
        wire.verify_credential(credential, HUB.public, 1_001)
    assert stale.value.reason is Reason.STALE


def test_a_credential_of_another_hub_or_changed_is_a_bad_signature() -> None:
    credential = wire.decode_credential(wire.issue_credential(OTHER_HUB, "wang", 10**13))
    with pytest.raises(AuthError) as other:
        wire.verify_credential(credential, HUB.public, 0)
    assert other.value.reason is Reason.BAD_SIGNATURE
    # Another hub claiming this hub's key in hub_sign: the signature does not hold.
    forged = wire.TechCredential(tech="wang", hub_sign=HUB.public.hex, exp=10**13, sig=credential.sig)
    with pytest.raises(AuthError) as bad:
        wire.verify_credential(forged, HUB.public, 0)
    assert bad.value.reason is Reason.BAD_SIGNATURE
    mine = wire.decode_credential(wire.issue_credential(HUB, "wang", 10**13))
    longer = wire.TechCredential(tech=mine.tech, hub_sign=mine.hub_sign, exp=mine.exp + 1, sig=mine.sig)
    with pytest.raises(AuthError):
        wire.verify_credential(longer, HUB.public, 0)


def test_a_credential_file_may_end_with_a_newline_but_must_be_canonical() -> None:
    raw = wire.issue_credential(HUB, "王芳", 10**13)
    assert wire.decode_credential(raw + b"\n") == wire.decode_credential(raw)
    with pytest.raises(wire.ConsoleError):
        wire.decode_credential(raw.replace(b",", b", ", 1))
    with pytest.raises(ValueError, match="printable"):
        wire.issue_credential(HUB, "a\nb", 10**13)


# -- the spec --------------------------------------------------------------------------------------

SPEC = SPEC_PATH.read_text(encoding="utf-8")


def test_the_generated_tables_are_current() -> None:
    assert refresh(SPEC, BLOCKS) == SPEC, "run: .venv/bin/python -m tests.protocol.test_console"


def test_the_worked_example_is_what_the_code_makes_and_reads() -> None:
    block = re.search(r"```console\n(.*?)```", SPEC, re.S)
    assert block is not None
    lines = [line.split(" ", 1) for line in block[1].splitlines()]
    assert len(lines) == 10
    damaged = b'{"id":2,"op":"info","v":1}*00000000\n'
    refused_requests = (6, 8)  # the damaged frame, and the one in a version the terminal does not speak
    for number, (side, text) in enumerate(lines):
        frame = text.encode() + b"\n"
        if side == ">":
            assert number % 2 == 0
            if number not in refused_requests:
                assert wire.encode_request(wire.decode_request(frame)) == frame
        else:
            assert side == "<"
            assert wire.encode_response(wire.decode_response(frame)) == frame
    assert lines[6][1].encode() + b"\n" == damaged
    replies = [wire.decode_response(text.encode()) for side, text in lines if side == "<"]
    assert replies[0] == wire.HelloReply(id=1, v=1, device="hall1-w03", fw="0.1.0")
    assert isinstance(replies[1], wire.InfoReply)
    assert not replies[1].paired
    assert replies[2] == wire.Refusal(
        id=3,
        op=wire.Op.IDENTIFY,
        error=wire.ConsoleCode.NOT_PAIRED,
        detail="this terminal is not paired: it has no hub key to check a credential with",
    )
    assert refused(damaged).code is wire.ConsoleCode.BAD_CRC
    assert replies[3] == wire.refusal_for(refused(damaged))
    assert replies[4] == wire.refusal_for(refused(lines[8][1].encode()))


def test_the_example_credential_is_what_the_test_key_signs() -> None:
    block = re.search(r"```json\n(.*?)\n```", SPEC, re.S)
    assert block is not None
    assert TEST_KEY.public.hex in SPEC
    assert block[1].encode() == wire.issue_credential(TEST_KEY, "wang", 1763830800000)  # Ed25519 is deterministic
    credential = wire.decode_credential(block[1].encode())
    wire.verify_credential(credential, TEST_KEY.public, 1763830800000)
    identify = re.search(r'> (\{"credential".*)', SPEC)
    assert identify is not None
    request = wire.decode_request(identify[1].encode())
    assert isinstance(request, wire.IdentifyRequest)
    assert request.credential == credential


def test_the_numbers_in_the_text_are_the_codes_numbers() -> None:
    assert wire.crc32(b"123456789") == wire.CRC_CHECK
    assert f"**0x{wire.CRC_CHECK:08x}**" in SPEC
    assert f"at most **{wire.MAX_FRAME_BYTES} bytes**" in SPEC
    assert f"| a frame, `*`, CRC and `\\n` included | {wire.MAX_FRAME_BYTES} bytes |" in SPEC
    assert f"1..{wire.MAX_ID}" in SPEC
    assert f"({wire.CODE_LIFETIME_MS} ms" in SPEC
    assert f"| `tls_ca` | {wire.MAX_CA_CHARS} characters of base64 |" in SPEC


if __name__ == "__main__":
    fresh = refresh(SPEC, BLOCKS)
    if fresh != SPEC:
        SPEC_PATH.write_text(fresh, encoding="utf-8")
        print(f"{SPEC_PATH}: tables rewritten")
    sys.exit(0)
