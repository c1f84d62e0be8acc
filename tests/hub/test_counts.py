"""The daily counts reports read stay equal to a recount of the ratings, whatever arrives in what order."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hub import registry
from hub.audit import audit
from hub.config import HubConfig
from hub.ingest import Ingest
from hub.queries import Reader
from hub.writer import Writer
from protocol import GENESIS, Channel, Flag, Health, Kind, PanelState, Rating, SigningKey, encode_health, topic
from tests.helpers import batch_bytes

KEY = SigningKey.generate()
MIDNIGHT = 1_763_827_200_000  # 2025-11-23T00:00+08:00: records either side of a day boundary

specs = st.lists(
    st.tuples(
        st.sampled_from(["press", "amend", "timeout"]),
        st.sampled_from(["E1", "E2", None]),
        st.integers(1, 5),
        st.integers(-30_000, 30_000),  # ms from midnight
        st.sampled_from(["", "misuse", "uninvited"]),
    ),
    min_size=1,
    max_size=25,
)


def build(spec: list[tuple[str, str | None, int, int, str]]) -> list[Rating]:
    records, prev = [], GENESIS
    for seq, (wanted, someone, score, offset, flag) in enumerate(spec, start=1):
        kind = "press" if wanted == "amend" and seq == 1 else wanted
        staff = someone if kind == "press" else someone or "E1"
        record = Rating(
            device="d1",
            seq=seq,
            kind=Kind(kind),
            t=MIDNIGHT + offset,
            boot="b1",
            mono=100_000 + offset,
            fw="1",
            prev=prev,
            staff=staff,
            score=None if kind == "timeout" else score,
            amends=1 + (score % (seq - 1)) if kind == "amend" else None,
            flags=() if not flag or kind == "timeout" else (Flag(flag),),
        ).signed(KEY)
        records.append(record)
        prev = record.hash()
    return records


@settings(max_examples=60)
@given(specs, st.data())
def test_counts_equal_a_recount_after_any_order_of_delivery(
    tmp_path_factory: object, spec: list[tuple[str, str | None, int, int, str]], data: st.DataObject
) -> None:
    folder: Path = tmp_path_factory.mktemp("counts")  # type: ignore[attr-defined]
    url = f"sqlite:///{folder / 'hub.sqlite3'}"
    writer = Writer.open(url)
    writer.write(registry.add_device, "d1", KEY.public.hex, department="A")
    writer.write(registry.add_staff, "E1", department="A")
    writer.write(registry.add_staff, "E2", department="B")
    ingest = Ingest(writer, HubConfig())
    records = build(spec)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(records) - 1), max_size=6)) if len(records) > 1 else [])
    edges = [0, *cuts, len(records)]
    batches = [batch_bytes(KEY, records[a:b]) for a, b in pairwise(edges)]
    deliveries = data.draw(st.permutations(batches + data.draw(st.lists(st.sampled_from(batches), max_size=3))))
    health_at = data.draw(st.integers(0, len(deliveries)))
    shift = data.draw(st.sampled_from([0, 7_200_000, -90_000_000]))  # the terminal's clock was this wrong
    for index, payload in enumerate(deliveries):
        if index == health_at and shift:
            health = Health(
                device="d1",
                t=MIDNIGHT + 1_000,
                boot="b1",
                mono=101_000,
                fw="1",
                uptime_s=1,
                state="idle",
                panel=PanelState.NONE,
                outbox_depth=0,
                free_disk_bytes=1,
                misuse_alarms=0,
                rejected=0,
                session=1,
                hub_offset_ms=shift,
            )
            with writer.transaction():
                ingest.receive(topic("d1", Channel.HEALTH), encode_health(health, KEY), MIDNIGHT)
        with writer.transaction():
            ingest.receive(topic("d1", Channel.RATINGS), payload, MIDNIGHT)
    writer.close()
    with Reader.open(url) as reader:
        assert reader.stored_seqs("d1") == list(range(1, len(records) + 1))
        assert reader.counts() == reader.recount()
        assert audit(reader)["problems"] == []
