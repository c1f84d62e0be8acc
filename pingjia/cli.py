"""The `pingjia` command.

Each package registers its own subcommands, and heavy imports happen only inside the chosen one.
The simulator's (demo, sim, chaos, bench) appear when the simulator extra is installed
(`pip install 'pingjia[sim]'`, which `make run` and `make test` do): a terminal or a hub install
neither carries nor imports it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["build_parser", "main"]


def simulator_commands() -> ModuleType | None:
    """The simulator's command module, if the simulator extra (the embedded broker, amqtt) is installed."""
    if importlib.util.find_spec("amqtt") is None:
        return None
    from simulator import cli

    return cli


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only` (a first word: device, hub, report, ...) just what that
    command needs, so that a terminal's `pingjia device run` imports nothing of the hub's or the
    simulator's (it is the long-running process whose memory counts)."""
    parser = argparse.ArgumentParser(prog="pingjia", description="counter-top satisfaction terminals and their hub")
    commands = parser.add_subparsers(dest="command", required=True)
    if only in (None, "device"):
        from device import cli as device_cli

        device_cli.register(commands)
    if only in (None, "hub", "report"):
        from hub import cli as hub_cli

        hub_cli.register(commands)
    if only in (None, "tech"):
        from pingjia import tech

        tech.register(commands)
    if only is None:
        simulator = simulator_commands()
        if simulator is not None:
            simulator.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    first = words[0] if words and words[0] in ("device", "hub", "report", "tech") else None
    args = build_parser(first).parse_args(words)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
