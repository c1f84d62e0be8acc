"""A real terminal on a simulated clock: `python -m simulator.terminal --clock-offset-file F device run ...`.

The same `pingjia device run` as on a counter (device.cli.run_terminal), with the host backend of
the clock (simulator.clock.OffsetClock): the fault scenario and the clock tests make its wall
clock jump by writing the file. Production terminals have no such option.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from device.cli import run_terminal
from pingjia.cli import build_parser
from simulator.clock import OffsetClock

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    ours = argparse.ArgumentParser(prog="python -m simulator.terminal", add_help=False)
    ours.add_argument("--clock-offset-file", type=Path, required=True, help="ms to add to the wall clock")
    known, rest = ours.parse_known_args(argv)
    args = build_parser().parse_args(rest)
    if getattr(args, "func", None) is not run_terminal:
        ours.error("expected `device run ...` after --clock-offset-file")
    return int(run_terminal(args, clock=OffsetClock(known.clock_offset_file)))


if __name__ == "__main__":
    sys.exit(main())
