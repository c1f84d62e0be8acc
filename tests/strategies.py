"""Hypothesis strategies for every protocol value, in one place."""

from __future__ import annotations

from hypothesis import strategies as st

from protocol import (
    GENESIS,
    Ack,
    ConfigDoc,
    Flag,
    Kind,
    Rating,
    Reason,
    Rejection,
    SigningKey,
    Status,
    StatusState,
    leaf_hash,
    limits,
)
from protocol.record import INDICATORS

# One key for all generated records, statuses, health and events (a terminal's), and one for what a
# hub signs (acks, commands, configuration, its status): key generation is not what these tests are about.
KEY = SigningKey.generate()
HUB_KEY = SigningKey.generate()

device_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")), min_size=1, max_size=64
).filter(str.isprintable)
staff_ids = printable
hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
boots = st.from_regex(r"[A-Za-z0-9-]{1,64}", fullmatch=True)
ms = st.integers(min_value=0, max_value=limits.MAX_MS)
seqs = st.integers(min_value=1, max_value=limits.MAX_SEQ)


@st.composite
def ratings(draw: st.DrawFn, *, device: str | None = None, seq: int | None = None, prev: str | None = None) -> Rating:
    """A valid unsigned rating of any kind, with any mix of optional fields."""
    kind = draw(st.sampled_from(Kind))
    number = seq if seq is not None else draw(seqs)
    if kind is Kind.AMEND and number < 2:
        kind = Kind.PRESS
    staff = draw(staff_ids) if kind is not Kind.PRESS else draw(st.none() | staff_ids)
    score = None if kind is Kind.TIMEOUT else draw(st.integers(1, 5))
    reasons: tuple[int, ...] = ()
    subscores: tuple[tuple[str, int], ...] = ()
    if kind is not Kind.TIMEOUT:
        reasons = tuple(
            draw(st.lists(st.integers(1, limits.MAX_REASON_CODE), max_size=limits.MAX_REASONS, unique=True))
        )
        subscores = tuple(sorted(draw(st.dictionaries(st.sampled_from(INDICATORS), st.integers(1, 5))).items()))
    return Rating(
        device=device if device is not None else draw(device_ids),
        seq=number,
        kind=kind,
        t=draw(ms),
        boot=draw(boots),
        mono=draw(ms),
        fw=draw(st.text(alphabet="0123456789.abcdefv-", min_size=1, max_size=limits.MAX_FW_CHARS)),
        prev=prev if prev is not None else draw(hex64),
        staff=staff,
        score=score,
        amends=draw(st.integers(1, number - 1)) if kind is Kind.AMEND else None,
        reasons=reasons,
        subscores=subscores,
        contact=draw(st.none() | st.from_regex(r"[A-Za-z0-9+/=]{1,200}", fullmatch=True)),
        ticket=draw(st.none() | printable),
        flags=tuple(sorted(draw(st.sets(st.sampled_from(Flag))))),
    )


@st.composite
def chains(draw: st.DrawFn, *, max_size: int = 20) -> list[Rating]:
    """Consecutive signed records of one device, linked by prev hashes, from seq 1 or later."""
    device = draw(device_ids)
    first = draw(st.integers(1, 1000))
    prev = GENESIS if first == 1 else draw(hex64)
    records = []
    for offset in range(draw(st.integers(1, max_size))):
        record = draw(ratings(device=device, seq=first + offset, prev=prev)).signed(KEY)
        records.append(record)
        prev = leaf_hash(record.canonical())
    return records


rejections = st.builds(
    Rejection,
    reason=st.sampled_from(Reason),
    detail=st.text(max_size=limits.MAX_DETAIL_CHARS).filter(str.isprintable),
    seq=st.none() | seqs,
)


@st.composite
def _acks(draw: st.DrawFn) -> Ack:
    """An unsigned ack; `held`, when there is room for one, starts above upto+1 (a gap before it)."""
    upto = draw(st.integers(0, limits.MAX_SEQ) | st.integers(0, 1000))
    held: tuple[int, int] | None = None
    if upto + 2 <= limits.MAX_SEQ and draw(st.booleans()):
        first = draw(st.integers(upto + 2, limits.MAX_SEQ) | st.integers(upto + 2, min(upto + 500, limits.MAX_SEQ)))
        held = (first, draw(st.integers(first, limits.MAX_SEQ) | st.integers(first, min(first + 500, limits.MAX_SEQ))))
    return Ack(
        device=draw(device_ids),
        upto=upto,
        t=draw(ms),
        held=held,
        rejects=tuple(draw(st.lists(rejections, max_size=5))),
    )


acks = _acks()

statuses = st.builds(
    Status, device=device_ids, state=st.sampled_from(StatusState), session=st.integers(0, limits.MAX_SESSION)
)


# -- panel -----------------------------------------------------------------------------------------
# Frames of the key panel's serial protocol (protocol/panel.py). Appended as its own section, so its
# import lives here rather than at the top.

from protocol import panel  # noqa: E402

panel_seqs = st.integers(0, 0xFF)
panel_u32 = st.integers(0, 0xFFFF_FFFF)
panel_u16 = st.integers(0, 0xFFFF)
panel_texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
    min_size=1,
    max_size=panel.MAX_TEXT_BYTES,
).filter(lambda text: text.isprintable() and len(text.encode()) <= panel.MAX_TEXT_BYTES)
panel_keys = st.integers(1, panel.INVITE_KEY)

PANEL_FRAMES: dict[type[panel.Frame], st.SearchStrategy[panel.Frame]] = {
    panel.Hello: st.builds(panel.Hello, seq=panel_seqs, fw=panel_texts, serial=panel_texts),
    panel.KeyDown: st.builds(panel.KeyDown, seq=panel_seqs, key=panel_keys, panel_ms=panel_u32),
    panel.KeyUp: st.builds(panel.KeyUp, seq=panel_seqs, key=panel_keys, panel_ms=panel_u32),
    panel.Card: st.builds(panel.Card, seq=panel_seqs, uid=st.binary(min_size=1, max_size=panel.MAX_UID_BYTES)),
    panel.Pong: st.builds(panel.Pong, seq=panel_seqs, token=panel_u32),
    panel.FrameAck: st.builds(panel.FrameAck, seq=panel_seqs, ref=panel_seqs),
    panel.FrameNak: st.builds(panel.FrameNak, seq=panel_seqs, ref=panel_seqs, code=st.integers(0, 0xFF)),
    panel.Ping: st.builds(panel.Ping, seq=panel_seqs, token=panel_u32),
    panel.Identify: st.builds(panel.Identify, seq=panel_seqs),
    panel.SetLeds: st.builds(
        panel.SetLeds, seq=panel_seqs, states=st.tuples(*[st.sampled_from(panel.LedState)] * panel.KEYS)
    ),
    panel.Beep: st.builds(
        panel.Beep,
        seq=panel_seqs,
        pattern=st.lists(st.tuples(panel_u16, panel_u16), max_size=panel.MAX_BEEP_STEPS).map(tuple),
    ),
}
panel_frames: st.SearchStrategy[panel.Frame] = st.one_of(*PANEL_FRAMES.values())


# -- health, events, commands --

from protocol import Command, CommandName, DeviceEvent, EventKind, Health, PanelState  # noqa: E402
from protocol.config import REMOTE_SETTINGS  # noqa: E402

healths = st.builds(
    Health,
    device=device_ids,
    t=ms,
    boot=boots,
    mono=ms,
    fw=st.just("0.1.0"),
    uptime_s=st.integers(0, 10**9),
    state=st.sampled_from(["closed", "idle", "invited", "thanks", "reasons", "out_of_service"]),
    panel=st.sampled_from(PanelState),
    outbox_depth=st.integers(0, 10**9),
    free_disk_bytes=st.integers(0, 2**50),
    misuse_alarms=st.integers(0, 10**6),
    rejected=st.integers(0, 10**6),
    session=st.integers(0, limits.MAX_SESSION),
    staff=st.none() | staff_ids,
    panel_fw=st.none() | st.just("panel-1.0"),
    oldest_unacked_s=st.none() | st.integers(0, 10**9),
    hub_offset_ms=st.none() | st.integers(-limits.MAX_MS, limits.MAX_MS),
    last_error=st.none() | printable,
    panel_dropped=st.none() | st.integers(0, 10**9),
    unreadable=st.none() | st.integers(0, 10**9),
    refused=st.none() | st.integers(0, 10**9),
    refused_last=st.none() | printable,
    config_version=st.none() | st.integers(1, limits.MAX_COUNTER),
    hub_key=st.none() | st.binary(min_size=8, max_size=8).map(bytes.hex),
)
device_events = st.builds(
    DeviceEvent,
    device=device_ids,
    t=ms,
    boot=boots,
    mono=ms,
    kind=st.sampled_from(EventKind),
    detail=st.none() | printable,
)
counters = st.integers(1, limits.MAX_COUNTER)
commands = st.one_of(
    st.builds(
        Command,
        device=device_ids,
        cmd=st.just(CommandName.LOGIN),
        staff=staff_ids,
        id=st.none() | st.text(alphabet="abc123-", min_size=1, max_size=64),
        n=counters,
        t=ms,
    ),
    st.builds(Command, device=device_ids, cmd=st.just(CommandName.LOGOUT), n=counters, t=ms),
    st.builds(
        Command, device=device_ids, cmd=st.just(CommandName.INVITE), ticket=st.none() | printable, n=counters, t=ms
    ),
)


# -- configuration documents --

setting_names = st.from_regex(r"[a-z][a-z0-9_]{0,63}", fullmatch=True) | st.sampled_from(REMOTE_SETTINGS)
setting_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
    max_size=limits.MAX_SETTING_CHARS,
).filter(str.isprintable)
configs = st.builds(
    ConfigDoc,
    device=device_ids,
    version=st.integers(1, limits.MAX_COUNTER),
    t=ms,
    settings=st.dictionaries(setting_names, setting_values, max_size=limits.MAX_SETTINGS),
)


# -- clerks' cards --

import base64  # noqa: E402

from protocol.card import PHOTO_MAGIC, Card  # noqa: E402

card_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn")),
    min_size=1,
    max_size=limits.MAX_NAME_CHARS,
).filter(str.isprintable)
# Photos are only checked by their first bytes: a signature and some bytes make one.
photos = st.builds(
    lambda magic, rest: base64.b64encode(magic + rest).decode(),
    st.sampled_from(list(PHOTO_MAGIC.values())),
    st.binary(max_size=300),
)
cards = st.builds(
    Card,
    device=device_ids,
    version=st.integers(1, limits.MAX_COUNTER),
    t=ms,
    staff=staff_ids,
    name=card_names,
    department=st.none() | card_names,
    counter=st.none() | card_names,
    photo=st.none() | photos,
)
