"""Power cuts: the terminal process is SIGKILLed at random moments while clerks invite and customers press."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from device import identity
from device.events import Thanked
from device.outbox import Outbox
from simulator.processes import TerminalProcess

pytestmark = pytest.mark.slow

PRESSES = 2_000


def _check_outbox(folder: Path, thanked: dict[int, str]) -> int:
    outbox = Outbox(folder / identity.OUTBOX_FILE, device="t01", create=False)
    try:
        outbox.verify_chain()
        stored = {record.seq: record.hash() for record in outbox.records()}
        head = outbox.head[0]
    finally:
        outbox.close()
    assert sorted(stored) == list(range(1, head + 1)), "seqs must be contiguous from 1"
    for seq, digest in thanked.items():
        assert stored.get(seq) == digest, f"thanked seq {seq} was lost or its seq reused"
    return head


def test_sigkill_at_random_moments_loses_no_thanked_rating_and_never_reuses_a_seq(tmp_path: Path) -> None:
    seed = int(os.environ.get("PINGJIA_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    folder = tmp_path / "t01"
    identity.create(folder, "t01")
    thanked: dict[int, str] = {}
    kills = ticket = 0

    def start() -> TerminalProcess:
        terminal = TerminalProcess(folder, broker_url=None, settings=["thank_you_ms=0"], log=tmp_path / "t01.log")
        terminal.start()
        terminal.wait_for(lambda t: t.ready, 30, "the terminal to start")
        return terminal

    while len(thanked) < PRESSES:
        terminal = start()
        terminal.login("E1")
        burst = rng.randint(1, 150)
        for _ in range(burst):
            ticket += 1
            terminal.invite(f"T{ticket}")
            if rng.random() < 0.9:  # one in ten walks away: the next invite closes it as a timeout
                terminal.press(rng.randint(3, 5))
        # Kill after a random number of records: the terminal is then usually in the middle of the
        # next one (signing, inserting, committing, or reporting the thanks).
        target = rng.randint(0, burst)
        terminal.wait_for(lambda t: len(t.recorded) >= target, 60, f"{target} records (seed {seed})")
        terminal.kill()
        kills += 1
        for event in terminal.events:
            if isinstance(event, Thanked):
                seq, digest = event.seq, event.hash
                assert thanked.get(seq, digest) == digest, (
                    f"seq {seq} thanked twice for different records (seed {seed})"
                )
                thanked[seq] = digest
        head = _check_outbox(folder, thanked)
        assert head >= max(thanked, default=0)
    assert kills >= 8, f"only {kills} power cuts (seed {seed})"
    # After all that, the terminal starts again and carries on from the right seq.
    terminal = start()
    head = _check_outbox(folder, thanked)
    terminal.login("E1")
    terminal.invite("last")
    terminal.press(5)
    terminal.wait_for(lambda t: bool(t.thanked), 30, "one more thanks")
    assert terminal.thanked == [head + 1]
    assert terminal.quit() == 0
