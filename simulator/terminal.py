"""A real terminal with the simulator's host backends: `python -m simulator.terminal [--clock-offset-file F]
[--fingers PIPE] device run ...`.

The same `pingjia device run` as on a counter (device.cli.run_terminal), with the host backend of
the clock (simulator.clock.OffsetClock: the fault scenario and the clock tests make its wall clock
jump by writing the file) and of the touchscreen's finger (simulator.touch.Finger: a simulated
customer's taps and a clerk's card reader, read from a named pipe, with `--keys touch`). Production
terminals have no such options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from device.cli import run_terminal
from device.io import Io
from pingjia.cli import build_parser
from simulator.clock import OffsetClock

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    ours = argparse.ArgumentParser(prog="python -m simulator.terminal", add_help=False)
    ours.add_argument("--clock-offset-file", type=Path, help="ms to add to the wall clock")
    ours.add_argument("--fingers", type=Path, help="a named pipe of taps for the touchscreen (simulator.touch)")
    known, rest = ours.parse_known_args(argv)
    args = build_parser("device").parse_args(rest)
    if getattr(args, "func", None) is not run_terminal:
        ours.error("expected `device run ...` after the simulator's options")

    def attach(io: Io) -> None:
        if known.fingers is None:
            return
        from device.io.touch import TouchScreen
        from simulator.touch import Finger

        if not isinstance(io, TouchScreen):
            ours.error("--fingers is for a touchscreen terminal (--keys touch)")
        Finger(known.fingers, io).start()

    clock = OffsetClock(known.clock_offset_file) if known.clock_offset_file is not None else None
    return int(run_terminal(args, clock=clock, attach=attach))


if __name__ == "__main__":
    sys.exit(main())
