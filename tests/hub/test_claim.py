"""Claims at the hub (hub/claim.py): `hub claim` opens a code's claim account, `ClaimDesk` answers
the terminal's claim request once, on a real database (SQLite; PostgreSQL where marked), through
the one writer.

What must hold: the hub keeps no code, only the claim account the code names; a good request
registers the terminal, spends the code, closes the claim account and is answered with the
terminal's own account, which the broker takes; an expired, spent or unknown code, a request that
does not verify or comes through another account, and a terminal the hub cannot pair get nothing,
and leave nothing written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from hub import brokerconf
from hub.claim import ClaimDesk, ClaimError, add_command, claim_filter, enter_code, is_claim
from hub.errors import StoreError
from hub.identity import HubKeys
from hub.pairing import PairingError, add_technician, register_paired, revoke_technician
from hub.queries import Reader
from hub.writer import Writer
from protocol import SealKey, SigningKey
from protocol import claim as wire
from protocol.topics import CLAIM_REQUEST_FILTER, claim_topics
from runtime.fake import FakeBroker
from runtime.link import Client, Inbound, LinkEvent

NOW = 1_763_800_000_000
MINUTE = 60_000
KEYS = HubKeys(sign=SigningKey.generate(), seal=SealKey.generate())
TERMINAL = SigningKey.generate()
CODE = "318204"
DEVICE = "hall1-w07"


@pytest.fixture
def writer(db_url: str) -> Any:
    with Writer.open(db_url, migrate=True) as opened:
        opened.write(add_technician, "wang", NOW - MINUTE)
        yield opened


def enter(writer: Writer, code: str = CODE, **changes: Any) -> Any:
    values: dict[str, Any] = {
        "department": "综合受理",
        "counter": "7号窗口",
        "by": "wang",
        "now_ms": NOW,
        "site": "hall1",
    }
    return writer.write(enter_code, code, **(values | changes))


def ask(code: str = CODE, device: str = DEVICE, key: SigningKey = TERMINAL) -> tuple[str, bytes, SealKey]:
    reply_key = SealKey.generate()
    raw = wire.encode_request(key, code=code, device=device, reply_key=reply_key.public_hex)
    return claim_topics(wire.claim_user(code))[0], raw, reply_key


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with Reader.open(url) as reader:
        return [tuple(row) for row in reader.execute(sql, params).fetchall()]


def nothing_registered(url: str) -> bool:
    return rows(url, "SELECT id FROM devices") == [] and rows(url, "SELECT * FROM device_events") == []


# -- entering a code -------------------------------------------------------------------------------


def test_entering_a_code_keeps_its_claim_account_not_the_code(writer: Writer, db_url: str) -> None:
    ticket = enter(writer)
    account = wire.claim_user(CODE)
    assert ticket.account == account
    assert ticket.expires_ms == NOW + 10 * MINUTE
    assert (ticket.replaced, ticket.device, ticket.pubkey) == (False, None, None)
    assert rows(db_url, "SELECT * FROM pairing_codes") == [
        (account, None, None, "hall1", "综合受理", "7号窗口", NOW, NOW + 10 * MINUTE, None, "wang")
    ]
    assert CODE not in json.dumps(rows(db_url, "SELECT * FROM pairing_codes"))
    [(role, expires_ms, pw_hash)] = rows(
        db_url, "SELECT role, expires_ms, pw_hash FROM broker_users WHERE username = ?", (account,)
    )
    assert (role, expires_ms) == ("claim", NOW + 10 * MINUTE)
    assert brokerconf.verify_password(wire.claim_password(CODE), pw_hash)
    with Reader.open(db_url) as reader:  # the broker's files hold it while it lives, and not after
        assert account in {user.username for user in brokerconf.broker_users(reader, NOW + 10 * MINUTE - 1)}
        assert account not in {user.username for user in brokerconf.broker_users(reader, NOW + 10 * MINUTE)}
        text = brokerconf._render_acl(brokerconf.broker_users(reader, NOW))
    assert f"topic write pingjia/claim/{account}/request" in text
    assert f"topic read pingjia/claim/{account}/reply" in text


def test_a_code_entered_again_before_its_claim_replaces_the_first_entry(writer: Writer, db_url: str) -> None:
    enter(writer)
    ticket = enter(writer, counter="8号窗口", now_ms=NOW + MINUTE)
    assert ticket.replaced
    assert rows(db_url, "SELECT counter, expires_ms FROM pairing_codes") == [("8号窗口", NOW + 11 * MINUTE)]
    assert rows(db_url, "SELECT expires_ms FROM broker_users WHERE role = 'claim'") == [(NOW + 11 * MINUTE,)]


@pytest.mark.parametrize(
    ("code", "changes", "words"),
    [
        ("31820", {}, "6 digits"),
        ("３１８２０４", {}, "6 digits"),
        (CODE, {"department": ""}, "department"),
        (CODE, {"counter": "a\nb"}, "counter"),
        (CODE, {"site": "x" * 65}, "site"),
        (CODE, {"device": "claim-x"}, "device id"),
        (CODE, {"device": "a/b"}, "device id"),
    ],
)
def test_entering_a_bad_code_or_placement_is_refused(
    writer: Writer, db_url: str, code: str, changes: dict[str, Any], words: str
) -> None:
    with pytest.raises(ClaimError, match=words):
        enter(writer, code, **changes)
    assert rows(db_url, "SELECT * FROM pairing_codes") == []
    assert rows(db_url, "SELECT * FROM broker_users") == []


def test_only_a_technician_enters_a_code(writer: Writer, db_url: str) -> None:
    with pytest.raises(PairingError, match="no technician"):
        enter(writer, by="someone")
    writer.write(revoke_technician, "wang", NOW)
    with pytest.raises(PairingError, match="revoked"):
        enter(writer)
    assert rows(db_url, "SELECT * FROM pairing_codes") == []


# -- answering a claim -----------------------------------------------------------------------------


def test_a_good_claim_registers_the_terminal_and_is_answered_once(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    enter(writer)
    topic, raw, reply_key = ask()
    answered = writer.write(desk.handle, topic, raw, NOW + MINUTE)
    assert answered is not None
    reply_topic, payload = answered
    account = wire.claim_user(CODE)
    assert reply_topic == claim_topics(account)[1]

    request = wire.decode_request(raw)
    reply = wire.decode_reply(payload)
    wire.verify_reply(reply, request)
    assert reply.hub_sign == KEYS.sign_hex
    assert reply.hub_seal == KEYS.seal_hex
    assert (reply.username, reply.site, reply.department, reply.counter, reply.by) == (
        DEVICE,
        "hall1",
        "综合受理",
        "7号窗口",
        "wang",
    )
    assert reply.broker is None
    password = wire.open_password(reply, reply_key)

    # The terminal is registered with its key, as paired by who entered the code, and its account
    # takes the password it was sent; the code is spent, and the claim account closed.
    assert rows(db_url, "SELECT id, pubkey, department, counter, paired_by, revoked_ms FROM devices") == [
        (DEVICE, TERMINAL.public.hex, "综合受理", "7号窗口", "wang", None)
    ]
    [(pw_hash,)] = rows(db_url, "SELECT pw_hash FROM broker_users WHERE username = ?", (DEVICE,))
    assert brokerconf.verify_password(password, pw_hash)
    assert rows(db_url, "SELECT used_ms, device, pubkey FROM pairing_codes") == [
        (NOW + MINUTE, DEVICE, TERMINAL.public.hex)
    ]
    assert rows(db_url, "SELECT revoked_ms FROM broker_users WHERE username = ?", (account,)) == [(NOW + MINUTE,)]
    kinds = [row[0] for row in rows(db_url, "SELECT kind FROM device_events WHERE device = ? ORDER BY kind", (DEVICE,))]
    assert kinds == ["claimed", "paired"]
    assert desk.counters["claimed"] == 1

    # The same request again (the terminal's retry crossing the answer), or any other: nothing.
    assert writer.write(desk.handle, topic, raw, NOW + MINUTE + 1) is None
    topic, again, _ = ask()
    assert writer.write(desk.handle, topic, again, NOW + MINUTE + 2) is None
    assert desk.counters["spent"] == 2
    assert rows(db_url, "SELECT count(*) FROM devices") == [(1,)]


def test_an_answer_may_send_the_terminal_to_another_broker(writer: Writer) -> None:
    enter(writer)
    topic, raw, _ = ask()
    answered = writer.write(ClaimDesk(KEYS, broker="mqtts://hub.hall1:8883").handle, topic, raw, NOW)
    assert answered is not None
    assert wire.decode_reply(answered[1]).broker == "mqtts://hub.hall1:8883"


def test_an_expired_code_is_not_answered(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    enter(writer)
    topic, raw, _ = ask()
    assert writer.write(desk.handle, topic, raw, NOW + 10 * MINUTE) is None
    assert desk.counters == {"expired": 1}
    assert nothing_registered(db_url)
    assert rows(db_url, "SELECT used_ms FROM pairing_codes") == [(None,)]


def test_an_unknown_claim_account_is_not_answered(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    enter(writer)
    topic, raw, _ = ask("000000")
    assert writer.write(desk.handle, topic, raw, NOW) is None
    assert writer.write(desk.handle, "pingjia/v1/hall1-w07/ratings", raw, NOW) is None
    assert desk.counters == {"unknown_account": 1, "bad_topic": 1}
    assert nothing_registered(db_url)


def test_a_request_that_does_not_verify_is_not_answered(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    enter(writer)
    topic, raw, _ = ask()
    forged = json.loads(raw)
    forged["pubkey"] = SigningKey.generate().public.hex  # someone else's key under the terminal's signature
    assert (
        writer.write(desk.handle, topic, json.dumps(forged, sort_keys=True, separators=(",", ":")).encode(), NOW)
        is None
    )
    assert writer.write(desk.handle, topic, b"not a claim", NOW) is None
    assert desk.counters == {"bad_signature": 1, "malformed": 1}
    assert nothing_registered(db_url)
    # The code is not spent: the real terminal still claims with it.
    assert writer.write(desk.handle, topic, raw, NOW) is not None


def test_a_request_made_for_another_code_is_not_answered(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    enter(writer)
    enter(writer, "555555")
    _, raw, _ = ask("555555")
    topic, _, _ = ask(CODE)  # sent through the other claim account's topic
    assert writer.write(desk.handle, topic, raw, NOW) is None
    assert desk.counters == {"topic_mismatch": 1}
    assert nothing_registered(db_url)


def test_a_terminal_the_hub_cannot_pair_is_not_answered(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    writer.write(
        register_paired,
        device=DEVICE,
        pubkey=SigningKey.generate().public.hex,
        site="",
        department="d",
        counter="c",
        tech="wang",
        now_ms=NOW,
    )
    enter(writer)
    topic, raw, _ = ask()  # the same id, another key: a replacement goes through `tech replace`
    assert writer.write(desk.handle, topic, raw, NOW) is None
    assert desk.counters == {"not_pairable": 1}
    assert rows(db_url, "SELECT used_ms FROM pairing_codes") == [(None,)]

    writer.write(revoke_technician, "wang", NOW)  # who entered the code was revoked meanwhile
    topic, raw, _ = ask(device="hall1-w08")
    assert writer.write(desk.handle, topic, raw, NOW) is None
    assert desk.counters == {"not_pairable": 2}


def test_a_code_kept_for_one_terminal_is_answered_to_it_only(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    assert enter(writer, device=DEVICE).device == DEVICE
    topic, raw, _ = ask(device="hall1-w99")
    assert writer.write(desk.handle, topic, raw, NOW) is None
    assert desk.counters == {"other_device": 1}
    topic, raw, _ = ask()
    assert writer.write(desk.handle, topic, raw, NOW) is not None


def test_a_code_entered_again_after_its_claim_is_for_the_same_terminal_only(writer: Writer, db_url: str) -> None:
    desk = ClaimDesk(KEYS)
    enter(writer)
    topic, raw, _ = ask()
    assert writer.write(desk.handle, topic, raw, NOW) is not None  # the answer is lost on the way, say

    ticket = enter(writer, now_ms=NOW + MINUTE)
    assert (ticket.device, ticket.pubkey) == (DEVICE, TERMINAL.public.hex)
    with pytest.raises(ClaimError, match="claimed by terminal"):
        enter(writer, now_ms=NOW + MINUTE, device="hall1-w99")
    other = SigningKey.generate()
    topic, raw, _ = ask(device=DEVICE, key=other)  # someone who read the code off the screen
    assert writer.write(desk.handle, topic, raw, NOW + MINUTE) is None
    topic, raw, reply_key = ask()
    answered = writer.write(desk.handle, topic, raw, NOW + MINUTE)
    assert answered is not None
    password = wire.open_password(wire.decode_reply(answered[1]), reply_key)
    [(pw_hash,)] = rows(db_url, "SELECT pw_hash FROM broker_users WHERE username = ?", (DEVICE,))
    assert brokerconf.verify_password(password, pw_hash)  # a new password: the lost one no longer works

    # Ten minutes on, the code is anybody's again (codes come round).
    assert enter(writer, now_ms=NOW + 12 * MINUTE).device is None


def test_the_desk_writes_only_inside_the_writer_transaction(writer: Writer) -> None:
    topic, raw, _ = ask()
    with pytest.raises(StoreError, match="transaction"):
        ClaimDesk(KEYS).handle(writer.db, topic, raw, NOW)
    with pytest.raises(StoreError, match="transaction"):
        enter_code(writer.db, CODE, department="d", counter="c", by="wang", now_ms=NOW)


def test_claim_topics_are_told_from_the_others() -> None:
    assert is_claim(claim_topics(wire.claim_user(CODE))[0])
    assert not is_claim(claim_topics(wire.claim_user(CODE))[1])
    assert not is_claim("pingjia/v1/hall1-w07/ratings")
    assert claim_filter() == CLAIM_REQUEST_FILTER
    assert claim_filter("hubs") == f"$share/hubs/{CLAIM_REQUEST_FILTER}"


# -- in `hub serve`'s writer thread ----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def site(folder: Path, db_url: str) -> Path:
    with Reader.open(db_url) as reader:
        users = brokerconf.broker_users(reader, NOW)
    brokerconf.write_site(folder, users, port=1883)
    return folder


def test_serving_publishes_the_answer_acks_and_rewrites_the_site_a_moment_later(
    writer: Writer, db_url: str, tmp_path: Path
) -> None:
    enter(writer)
    folder = site(tmp_path / "broker", db_url)
    clock = Clock()
    desk = ClaimDesk(KEYS, broker_site=folder, db_url=db_url, refresh_delay_s=1.0, clock=clock)
    broker = FakeBroker()
    arrived: list[LinkEvent] = []
    hub = broker.connect(
        Client(
            client_id="pingjia-hub",
            on_event=arrived.append,
            manual_ack=True,
            subscriptions=[(CLAIM_REQUEST_FILTER, 1)],
            clean_start=False,
            session_expiry_s=60,
        )
    )
    hub.start()
    account = wire.claim_user(CODE)
    terminal_heard: list[LinkEvent] = []
    terminal = broker.connect(
        Client(client_id=account, on_event=terminal_heard.append, subscriptions=[(claim_topics(account)[1], 1)])
    )
    terminal.start()
    topic, raw, reply_key = ask()
    assert terminal.publish(topic, raw)
    [message] = [event for event in arrived if isinstance(event, Inbound)]

    assert account in (folder / "passwd").read_text()
    assert desk.serve(writer, hub, message, NOW)
    [reply] = [event.payload for event in terminal_heard if isinstance(event, Inbound)]
    wire.open_password(wire.decode_reply(reply), reply_key)

    assert desk.refresh_due
    assert desk.tick() is None  # not yet: the answer goes first
    assert account in (folder / "passwd").read_text()
    clock.now += 1.0
    assert desk.tick() is None  # rewritten (no Mosquitto runs here to signal)
    assert not desk.refresh_due
    passwd = (folder / "passwd").read_text()
    assert account not in passwd
    assert f"{DEVICE}:" in passwd

    # The message was acknowledged: the broker does not deliver it again on the next connection.
    broker.cut("pingjia-hub")
    assert [event for event in arrived if isinstance(event, Inbound)] == [message]
    # A request nobody answers is acknowledged all the same, and rewrites nothing.
    assert not desk.serve(writer, hub, message, NOW)
    assert not desk.refresh_due


def test_serving_survives_a_failing_store(writer: Writer, db_url: str) -> None:
    class Broken:
        def write(self, *_args: object, **_kwargs: object) -> None:
            raise StoreError("the database is away")

    acked: list[Inbound] = []

    class Link:
        client_id = "pingjia-hub"
        connected = True

        def publish(self, *_args: object, **_kwargs: object) -> bool:
            raise AssertionError("nothing to publish")

        def ack(self, message: Inbound) -> None:
            acked.append(message)

    desk = ClaimDesk(KEYS)
    topic, raw, _ = ask()
    message = Inbound(topic=topic, payload=raw, mid=1, qos=1, generation=1)
    assert not desk.serve(Broken(), Link(), message, NOW)  # type: ignore[arg-type]
    assert desk.counters == {"errors": 1}
    assert acked == [message]


def test_a_broker_site_needs_the_database_it_is_written_from(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="db_url"):
        ClaimDesk(KEYS, broker_site=tmp_path)


# -- `pingjia hub claim` ---------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_the_command_enters_the_code_and_says_so_in_json(
    writer: Writer, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site(tmp_path / "broker", db_url)
    argv = ["claim", CODE, "--department", "综合受理", "--counter", "7号窗口", "--by", "wang", "--db", db_url]
    assert run([*argv, "--site", "hall1", "--broker-site", str(folder)]) == 0
    document = json.loads(capsys.readouterr().out)
    account = wire.claim_user(CODE)
    assert document["claim_account"] == account
    assert (document["department"], document["counter"], document["site"]) == ("综合受理", "7号窗口", "hall1")
    assert document["broker_reloaded"] is None  # no Mosquitto of this site runs here
    assert f"{account}:" in (folder / "passwd").read_text()

    assert run(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["replaced"] is True
    assert "broker-config" in document["note"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["12345", "--department", "d", "--counter", "c", "--by", "wang"], "6 digits"),
        ([CODE, "--department", "d", "--counter", "c", "--by", "nobody"], "no technician"),
        ([CODE, "--department", "", "--counter", "c", "--by", "wang"], "department"),
    ],
)
def test_the_command_fails_in_one_line(
    writer: Writer, db_url: str, argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["claim", *argv, "--db", db_url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pingjia hub claim: ")
    assert words in captured.err
    assert captured.err.count("\n") == 1


def test_the_command_says_when_the_site_was_not_updated(
    writer: Writer, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["claim", CODE, "--department", "d", "--counter", "c", "--by", "wang", "--db", db_url]
    assert run([*argv, "--broker-site", str(tmp_path / "nowhere")]) == 2
    assert "the code is entered, but the broker site was not updated" in capsys.readouterr().err
