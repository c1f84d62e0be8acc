"""The terminal's side of pairing (device/pairing.py): codes, the Pairer's answers, the stored pairing.

The Pairer is pure: these tests give it requests and times and look at what it answers and changes.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given

from device.errors import StateError
from device.pairing import (
    MAX_WRONG_CODES,
    CodeVerdict,
    Identify,
    Paired,
    Pairer,
    Pairing,
    PairingCode,
    Unpaired,
    clear_pairing,
    load_pairing,
    save_pairing,
    store_in,
)
from device.state import StateDocument
from protocol import SigningKey
from protocol import console as wire
from tests.protocol.test_console import requests

HUB = SigningKey.generate()
OTHER_HUB = SigningKey.generate()
SEAL = "5e" * 32
WALL = 1_763_800_000_000
MINUTES = 60_000
LIFETIME = wire.CODE_LIFETIME_MS


def credential(hub: SigningKey = HUB, exp: int = WALL + 8 * 60 * MINUTES, tech: str = "wang") -> wire.TechCredential:
    return wire.decode_credential(wire.issue_credential(hub, tech, exp))


def digits(*codes: str) -> Iterator[str]:
    yield from codes
    raise AssertionError("the test drew more codes than it gave")


class Recorder:
    """A `persist` that keeps what it was given, and fails when told to."""

    def __init__(self) -> None:
        self.stored: list[Pairing | None] = []
        self.fail = False

    def __call__(self, pairing: Pairing | None) -> None:
        if self.fail:
            raise StateError("disk full")
        self.stored.append(pairing)


def pairer(codes: tuple[str, ...] = ("111111", "222222", "333333", "444444", "555555"), **kwargs) -> Pairer:
    draw = digits(*codes)
    return Pairer(
        device="hall1-w03",
        pubkey="ab" * 32,
        fw="0.1.0",
        pairing=kwargs.pop("pairing", None),
        now_ms=0,
        codes=PairingCode(0, draw=lambda: next(draw)),
        **kwargs,
    )


def pair_request(code: str, *, hub: SigningKey = HUB, cred: wire.TechCredential | None = None, ident: int = 5):
    return wire.PairRequest(
        id=ident,
        code=code,
        credential=cred or credential(hub),
        hub_sign=hub.public.hex,
        hub_seal=SEAL,
        broker="mqtts://broker.hall1:8883",
        username="hall1-w03",
        password="s3cret-password",
        tls_ca="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        site="hall1",
        department="综合受理",
        counter="3号窗口",
        staff="E1024",
    )


def paired(**kwargs) -> Pairer:
    terminal = pairer(**kwargs)
    response, change = terminal.handle(pair_request("111111"), now_ms=1, wall_ms=WALL)
    assert isinstance(response, wire.Done), response
    assert isinstance(change, Paired)
    return terminal


def refusal(response: wire.Response, code: wire.ConsoleCode) -> wire.Refusal:
    assert isinstance(response, wire.Refusal), response
    assert response.error is code, response
    return response


# -- the code --------------------------------------------------------------------------------------


def test_a_code_is_six_digits_from_secrets() -> None:
    code = PairingCode(0).current(0)
    assert len(code.digits) == wire.CODE_DIGITS
    assert code.digits.isdigit()
    assert code.left_ms(0) == LIFETIME


def test_a_code_lasts_ten_minutes_then_a_new_one_is_made() -> None:
    draw = digits("222222", "333333")
    codes = PairingCode(1000, draw=lambda: next(draw))
    assert codes.current(1000 + LIFETIME - 1).digits == "222222"
    assert codes.current(1000 + LIFETIME - 1).left_ms(1000 + LIFETIME - 1) == 1
    renewed = codes.current(1000 + LIFETIME)
    assert renewed.digits == "333333"
    assert renewed.made_ms == 1000 + LIFETIME


def test_a_code_is_taken_once_and_then_known_as_used() -> None:
    draw = digits("111111", "222222")
    codes = PairingCode(0, draw=lambda: next(draw))
    assert codes.take("111111", 5) is CodeVerdict.TAKEN
    assert codes.current(5).digits == "222222"
    assert codes.take("111111", 6) is CodeVerdict.USED
    assert codes.take("999999", 7) is CodeVerdict.WRONG


def test_an_expired_code_is_known_as_expired() -> None:
    draw = digits("111111", "222222", "333333")
    codes = PairingCode(0, draw=lambda: next(draw))
    assert codes.take("111111", LIFETIME) is CodeVerdict.EXPIRED
    assert codes.take("222222", LIFETIME + 1) is CodeVerdict.TAKEN


def test_wrong_codes_in_a_row_replace_the_code() -> None:
    draw = digits("111111", "222222")
    codes = PairingCode(0, draw=lambda: next(draw))
    for attempt in range(MAX_WRONG_CODES - 1):
        assert codes.take(f"90000{attempt}", attempt) is CodeVerdict.WRONG
    assert codes.current(10).digits == "111111"
    assert codes.take("999999", 10) is CodeVerdict.WRONG
    assert codes.current(11).digits == "222222"  # guessing over the line gets nowhere
    assert codes.take("111111", 12) is CodeVerdict.WRONG  # withdrawn: neither used nor expired


def test_a_new_code_is_never_the_one_just_retired() -> None:
    draw = digits("111111", "111111", "222222")
    codes = PairingCode(0, draw=lambda: next(draw))
    assert codes.take("111111", 0) is CodeVerdict.TAKEN
    assert codes.current(0).digits == "222222"


# -- hello and info --------------------------------------------------------------------------------


def test_hello_chooses_the_highest_version_both_speak() -> None:
    response, change = pairer().handle(wire.HelloRequest(id=1, versions=(1, 9)), now_ms=0, wall_ms=WALL)
    assert response == wire.HelloReply(id=1, v=1, device="hall1-w03", fw="0.1.0")
    assert change is None
    response, _ = pairer().handle(wire.HelloRequest(id=2, versions=(7, 9)), now_ms=0, wall_ms=WALL)
    assert refusal(response, wire.ConsoleCode.BAD_VERSION).versions == wire.VERSIONS


def test_info_gives_the_code_unpaired_and_the_place_paired() -> None:
    terminal = pairer()
    response, _ = terminal.handle(wire.InfoRequest(id=1), now_ms=60_000, wall_ms=WALL)
    assert response == wire.InfoReply(
        id=1,
        device="hall1-w03",
        pubkey="ab" * 32,
        fw="0.1.0",
        paired=False,
        code="111111",
        code_left_ms=LIFETIME - 60_000,
    )
    assert terminal.shown_code(60_000) is not None
    terminal = paired()
    response, _ = terminal.handle(wire.InfoRequest(id=2), now_ms=2, wall_ms=WALL)
    assert isinstance(response, wire.InfoReply)
    assert response.paired
    assert (response.hub, response.site, response.department, response.counter) == (
        HUB.public.hex[:16],
        "hall1",
        "综合受理",
        "3号窗口",
    )
    assert response.code == "222222"  # a paired terminal is paired again only with a code, too
    assert terminal.shown_code(2) is None  # but its screen does not show it


# -- pair ------------------------------------------------------------------------------------------


def test_pair_pins_the_hub_and_stores_the_pairing_before_answering() -> None:
    store = Recorder()
    terminal = pairer(persist=store)
    response, change = terminal.handle(pair_request("111111"), now_ms=1, wall_ms=WALL)
    assert response == wire.Done(id=5, op=wire.Op.PAIR, device="hall1-w03")
    assert isinstance(change, Paired)
    assert change.staff == "E1024"
    expected = Pairing(
        hub_sign=HUB.public.hex,
        hub_seal=SEAL,
        broker="mqtts://broker.hall1:8883",
        username="hall1-w03",
        password="s3cret-password",
        tls_ca="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        site="hall1",
        department="综合受理",
        counter="3号窗口",
        paired_ms=WALL,
        tech="wang",
    )
    assert change.pairing == expected
    assert store.stored == [expected]
    assert terminal.pairing == expected
    assert "s3cret" not in repr(expected)


def test_a_wrong_code_changes_nothing_and_does_not_spend_the_code() -> None:
    store = Recorder()
    terminal = pairer(persist=store)
    response, change = terminal.handle(pair_request("123456"), now_ms=1, wall_ms=WALL)
    assert "123456 is not the code" in refusal(response, wire.ConsoleCode.BAD_CODE).detail
    assert change is None
    assert store.stored == []
    assert terminal.handle(pair_request("111111"), now_ms=2, wall_ms=WALL)[0] == wire.Done(
        id=5, op=wire.Op.PAIR, device="hall1-w03"
    )


def test_an_expired_code_is_refused_as_expired() -> None:
    terminal = pairer()
    response, change = terminal.handle(pair_request("111111"), now_ms=LIFETIME, wall_ms=WALL)
    assert "expired" in refusal(response, wire.ConsoleCode.EXPIRED_CODE).detail
    assert change is None
    assert terminal.pairing is None


def test_the_code_is_spent_even_when_the_credential_is_refused() -> None:
    terminal = pairer()
    bad = pair_request("111111", cred=credential(OTHER_HUB))  # another hub's credential, this hub's key
    response, change = terminal.handle(bad, now_ms=1, wall_ms=WALL)
    refusal(response, wire.ConsoleCode.BAD_CREDENTIAL)
    assert change is None
    response, _ = terminal.handle(pair_request("111111"), now_ms=2, wall_ms=WALL)
    refusal(response, wire.ConsoleCode.USED_CODE)
    assert terminal.pairing is None


def test_an_expired_credential_is_refused_as_stale() -> None:
    terminal = pairer()
    response, _ = terminal.handle(pair_request("111111", cred=credential(exp=WALL - 1)), now_ms=1, wall_ms=WALL)
    assert "expired" in refusal(response, wire.ConsoleCode.STALE_CREDENTIAL).detail
    assert terminal.pairing is None


def test_a_paired_terminal_takes_a_pair_only_from_its_own_hub() -> None:
    terminal = paired()
    response, change = terminal.handle(pair_request("222222", hub=OTHER_HUB), now_ms=2, wall_ms=WALL)
    assert "unpair first" in refusal(response, wire.ConsoleCode.OTHER_HUB).detail
    assert change is None
    assert terminal.pairing is not None
    assert terminal.pairing.hub_sign == HUB.public.hex
    # Its own hub may pair it again (a new place, a new password), with the code of the moment.
    again = pair_request("333333")
    response, change = terminal.handle(again, now_ms=3, wall_ms=WALL + 5)
    assert isinstance(response, wire.Done)
    assert isinstance(change, Paired)
    assert change.pairing.paired_ms == WALL + 5


def test_a_store_that_fails_is_a_refusal_and_nothing_changes() -> None:
    store = Recorder()
    store.fail = True
    terminal = pairer(persist=store)
    response, change = terminal.handle(pair_request("111111"), now_ms=1, wall_ms=WALL)
    assert "disk full" in refusal(response, wire.ConsoleCode.STORAGE).detail
    assert change is None
    assert terminal.pairing is None


# -- identify and unpair ---------------------------------------------------------------------------


def test_an_unpaired_terminal_refuses_identify_and_unpair() -> None:
    terminal = pairer()
    for request in (
        wire.IdentifyRequest(id=1, credential=credential()),
        wire.UnpairRequest(id=2, credential=credential()),
    ):
        response, change = terminal.handle(request, now_ms=1, wall_ms=WALL)
        assert refusal(response, wire.ConsoleCode.NOT_PAIRED).id == request.id
        assert change is None


def test_identify_needs_a_credential_of_the_pinned_hub() -> None:
    terminal = paired()
    response, change = terminal.handle(wire.IdentifyRequest(id=7, credential=credential()), now_ms=2, wall_ms=WALL)
    assert response == wire.Done(id=7, op=wire.Op.IDENTIFY, device="hall1-w03")
    assert change == Identify()
    other = wire.IdentifyRequest(id=8, credential=credential(OTHER_HUB))
    response, change = terminal.handle(other, now_ms=3, wall_ms=WALL)
    assert "from hub" in refusal(response, wire.ConsoleCode.BAD_CREDENTIAL).detail
    assert change is None


def test_unpair_forgets_the_pairing_and_shows_a_fresh_code() -> None:
    store = Recorder()
    terminal = paired(persist=store)
    response, change = terminal.handle(wire.UnpairRequest(id=9, credential=credential()), now_ms=500, wall_ms=WALL)
    assert response == wire.Done(id=9, op=wire.Op.UNPAIR, device="hall1-w03")
    assert change == Unpaired()
    assert store.stored[-1] is None
    assert terminal.pairing is None
    code = terminal.shown_code(500)
    assert code is not None
    assert code.made_ms == 500
    assert code.left_ms(500) == LIFETIME
    # and now it takes a pair from any hub again
    response, _ = terminal.handle(pair_request(code.digits, hub=OTHER_HUB), now_ms=501, wall_ms=WALL)
    assert isinstance(response, wire.Done)


@given(requests)
def test_any_request_gets_an_answer_naming_it(request: wire.Request) -> None:
    for terminal in (pairer(codes=tuple(f"{n:06d}" for n in range(10))), paired()):
        response, change = terminal.handle(request, now_ms=10, wall_ms=WALL)
        assert response.id == request.id
        if isinstance(response, wire.Refusal):
            assert change is None
            assert response.op is request.op


# -- the stored pairing ----------------------------------------------------------------------------


def test_a_pairing_is_stored_privately_and_read_back(tmp_path: Path) -> None:
    state = StateDocument(tmp_path / "settings.json")
    state.update(device="hall1-w03", staff="E1024")
    assert load_pairing(state) is None
    terminal = paired()
    assert terminal.pairing is not None
    save_pairing(state, terminal.pairing)
    assert stat.S_IMODE((tmp_path / "settings.json").stat().st_mode) == 0o600
    reopened = StateDocument(tmp_path / "settings.json")
    assert load_pairing(reopened) == terminal.pairing
    assert reopened.get("staff") == "E1024"
    clear_pairing(reopened)
    assert load_pairing(StateDocument(tmp_path / "settings.json")) is None
    assert StateDocument(tmp_path / "settings.json").get("device") == "hall1-w03"  # the identity stays


def test_store_in_is_a_persist_function(tmp_path: Path) -> None:
    state = StateDocument(tmp_path / "settings.json")
    store = store_in(state)
    terminal = paired(persist=store)
    assert load_pairing(state) == terminal.pairing
    terminal.handle(wire.UnpairRequest(id=1, credential=credential()), now_ms=5, wall_ms=WALL)
    assert load_pairing(state) is None


def test_a_damaged_pairing_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"terminal": {"1": {"pairing": {"hub_sign": 5}}}}))
    with pytest.raises(StateError, match="damaged"):
        load_pairing(StateDocument(path))
