"""The terminal's side of a claim (device/claim.py), on the in-memory broker with a hub played by the
test: the client connects as the account its code names, sends its signed request until answered,
takes only an answer to that very request, signed and sealed as it must be, and never raises into
the terminal. (tests/test_claim_end_to_end.py runs it against a real site's Mosquitto and hub.)"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.claim import ClaimClient
from device.pairing import Pairing
from protocol import SealKey, SigningKey
from protocol import claim as wire
from protocol.topics import CLAIM_REQUEST_FILTER, claim_topics, claim_user_of
from runtime.fake import FakeBroker
from runtime.link import Broker, Client, Inbound, LinkEvent
from simulator.processes import wait_until

DEVICE = "hall1-w07"
TERMINAL = SigningKey.generate()
HUB = SigningKey.generate()
HUB_SEAL = SealKey.generate()
CLAIM_BROKER = "mqtt://claim.hall1:1883"
PASSWORD = "the-terminal-s-own-password"
WALL_MS = 1_763_800_000_000


def good_answer(request: wire.ClaimRequest, **changes: Any) -> bytes:
    reply = wire.ClaimReply(
        account=request.account,
        device=request.device,
        pubkey=request.pubkey,
        reply_key=request.reply_key,
        hub_sign=HUB.public.hex,
        hub_seal=HUB_SEAL.public_hex,
        username=request.device,
        password=wire.seal_password(request, PASSWORD),
        department="综合受理",
        counter="7号窗口",
        by="wang",
        site="hall1",
    )
    return wire.encode_reply(dataclasses.replace(reply, **changes), HUB)


class Hub:
    """The hub's side, played: what it answers to each request is `answers(n, request)` (None: nothing)."""

    def __init__(self, broker: FakeBroker, answers: Callable[[int, wire.ClaimRequest], list[bytes]]) -> None:
        self.requests: list[wire.ClaimRequest] = []
        self._answers = answers
        self._lock = threading.Lock()
        self.link = broker.connect(
            Client(client_id="pingjia-hub", on_event=self._on_event, subscriptions=[(CLAIM_REQUEST_FILTER, 1)])
        )
        self.link.start()

    def _on_event(self, event: LinkEvent) -> None:
        if not isinstance(event, Inbound):
            return
        request = wire.decode_request(event.payload)
        wire.verify_request(request, claim_user_of(event.topic))
        with self._lock:
            self.requests.append(request)
            count = len(self.requests)
        for payload in self._answers(count, request):
            self.link.publish(claim_topics(request.account)[1], payload)


class Code:
    """The pairing code the terminal shows, set by the test (None: paired, nothing to claim)."""

    def __init__(self, value: str | None) -> None:
        self.value = value
        self.asked = 0

    def __call__(self) -> str | None:
        self.asked += 1
        return self.value


@dataclasses.dataclass
class Rig:
    broker: FakeBroker
    code: Code
    paired: list[Pairing]
    accounts: list[tuple[str, str]]
    client: ClaimClient | None = None

    def start(self, **options: Any) -> ClaimClient:
        def connect(username: str, password: str) -> Broker:
            self.accounts.append((username, password))
            return self.broker

        options.setdefault("on_paired", self.paired.append)
        self.client = ClaimClient(
            CLAIM_BROKER, DEVICE, TERMINAL, self.code, retry_s=0.05, connect=connect, wall_ms=lambda: WALL_MS, **options
        )
        self.client.start()
        return self.client


@pytest.fixture
def rig() -> Iterator[Rig]:
    made = Rig(FakeBroker(), Code("123456"), [], [])
    yield made
    if made.client is not None:
        made.client.stop()


def test_it_claims_with_the_account_its_code_names_and_takes_the_answer(rig: Rig) -> None:
    hub = Hub(rig.broker, lambda _n, request: [good_answer(request)])
    client = rig.start()
    wait_until(lambda: client.claimed, 10, "the claim answered")
    assert rig.accounts == [(wire.claim_user("123456"), wire.claim_password("123456"))]
    [pairing] = rig.paired
    assert pairing == Pairing(
        hub_sign=HUB.public.hex,
        hub_seal=HUB_SEAL.public_hex,
        broker=CLAIM_BROKER,  # the answer named none: the broker the claim went through
        username=DEVICE,
        password=PASSWORD,
        tls_ca=None,
        site="hall1",
        department="综合受理",
        counter="7号窗口",
        paired_ms=WALL_MS,
        tech="claim:wang",
    )
    [request] = hub.requests
    assert (request.device, request.pubkey) == (DEVICE, TERMINAL.public.hex)
    # Done with that code: the claim connection is closed, and nothing more is sent.
    wait_until(lambda: not rig.broker.connected(wire.claim_user("123456")), 5, "the claim link closed")
    asked = rig.code.asked
    wait_until(lambda: rig.code.asked > asked + 4, 5, "a few more turns")
    assert len(hub.requests) == 1
    assert client.counters == {"requests": 1, "claimed": 1}


def test_the_answer_may_send_it_to_another_broker(rig: Rig, tmp_path: Path) -> None:
    ca = tmp_path / "site-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", encoding="ascii")
    Hub(rig.broker, lambda _n, request: [good_answer(request, broker="mqtts://hub.hall1:8883", site=None)])
    client = rig.start(tls_ca=ca)
    wait_until(lambda: client.claimed, 10, "the claim answered")
    [pairing] = rig.paired
    assert pairing.broker == "mqtts://hub.hall1:8883"
    assert pairing.site == ""
    assert pairing.tls_ca == ca.read_text(encoding="ascii")


def test_it_sends_the_request_again_until_answered(rig: Rig) -> None:
    hub = Hub(rig.broker, lambda n, request: [good_answer(request)] if n >= 4 else [])
    client = rig.start()
    wait_until(lambda: client.claimed, 10, "the claim answered")
    assert len(hub.requests) == 4
    assert len({request.reply_key for request in hub.requests}) == 1  # the same request, sent again
    assert client.counters["requests"] == 4


def test_it_takes_nothing_but_an_answer_to_its_own_request(rig: Rig) -> None:
    stranger = SigningKey.generate()

    def answers(n: int, request: wire.ClaimRequest) -> list[bytes]:
        if n > 1:
            return []
        other = dataclasses.replace(request, reply_key=SealKey.generate().public_hex)
        forged = wire.decode_reply(good_answer(request, hub_sign=stranger.public.hex))
        return [
            b"not an answer",
            good_answer(other),  # validly signed, for another request
            wire.encode_reply(
                dataclasses.replace(forged, counter="9号窗口"), HUB
            ),  # signed by another key than it carries
            good_answer(request, password=wire.seal_password(other, PASSWORD)),  # sealed to another key
            good_answer(request),
        ]

    Hub(rig.broker, answers)
    client = rig.start()
    wait_until(lambda: client.claimed, 10, "the claim answered")
    assert client.counters["bad_replies"] == 4
    [pairing] = rig.paired
    assert pairing.counter == "7号窗口"


def test_it_claims_only_while_there_is_a_code_and_with_the_code_shown(rig: Rig) -> None:
    hub = Hub(rig.broker, lambda _n, _request: [])
    rig.code.value = None
    client = rig.start()
    wait_until(lambda: rig.code.asked > 4, 5, "a few turns")
    assert rig.accounts == []
    assert not client.connected

    rig.code.value = "111111"
    wait_until(lambda: len(hub.requests) >= 1, 5, "a request for the first code")
    rig.code.value = "222222"  # the code expired: the terminal shows another
    wait_until(lambda: any(r.account == wire.claim_user("222222") for r in hub.requests), 5, "the second code")
    assert [account for account, _ in rig.accounts] == [wire.claim_user("111111"), wire.claim_user("222222")]
    assert not rig.broker.connected(wire.claim_user("111111"))
    assert client.connected

    rig.code.value = None  # paired by a technician meanwhile
    wait_until(lambda: not client.connected, 5, "the claim link closed")
    assert not client.claimed


def test_a_pairing_the_terminal_does_not_take_is_claimed_again(rig: Rig) -> None:
    hub = Hub(rig.broker, lambda _n, request: [good_answer(request)])
    attempts: list[Pairing] = []

    def on_paired(pairing: Pairing) -> None:
        attempts.append(pairing)
        if len(attempts) == 1:
            raise OSError("disk full")

    client = rig.start(on_paired=on_paired)
    wait_until(lambda: client.claimed, 10, "the claim taken the second time")
    assert len(attempts) == 2
    assert client.counters["not_taken"] == 1
    assert hub.requests[0].reply_key != hub.requests[-1].reply_key  # a new request: a new key to seal to


def test_a_failing_code_source_does_not_end_the_claim(rig: Rig) -> None:
    Hub(rig.broker, lambda _n, request: [good_answer(request)])
    calls = iter([RuntimeError("state unreadable"), RuntimeError("again")])

    def code() -> str | None:
        failure = next(calls, None)
        if failure is not None:
            raise failure
        return "123456"

    rig.code = code  # type: ignore[assignment]
    client = rig.start()
    wait_until(lambda: client.claimed, 10, "the claim answered")
    assert client.counters["code_errors"] == 2


def test_a_code_that_is_not_one_is_not_claimed(rig: Rig) -> None:
    rig.code.value = "12345"
    client = rig.start()
    wait_until(lambda: rig.code.asked > 4, 5, "a few turns")
    assert rig.accounts == []
    assert client.counters == {"bad_codes": 1}


def test_impossible_settings_are_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="broker"):
        ClaimClient("http://hub", DEVICE, TERMINAL, lambda: None, lambda _p: None)
    with pytest.raises(ValueError, match="retry_s"):
        ClaimClient(CLAIM_BROKER, DEVICE, TERMINAL, lambda: None, lambda _p: None, retry_s=0)
    with pytest.raises(ValueError, match="CA certificate"):
        ClaimClient(CLAIM_BROKER, DEVICE, TERMINAL, lambda: None, lambda _p: None, tls_ca=tmp_path / "none.pem")


def test_stop_ends_the_claim(rig: Rig) -> None:
    Hub(rig.broker, lambda _n, _request: [])
    client = rig.start()
    wait_until(lambda: client.connected, 5, "the claim link up")
    client.stop()
    assert not rig.broker.connected(wire.claim_user("123456"))
    with pytest.raises(RuntimeError, match="once"):
        client.start()
