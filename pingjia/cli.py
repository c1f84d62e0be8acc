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


def build_parser() -> argparse.ArgumentParser:
    from device import cli as device_cli
    from hub import cli as hub_cli

    parser = argparse.ArgumentParser(prog="pingjia", description="counter-top satisfaction terminals and their hub")
    commands = parser.add_subparsers(dest="command", required=True)
    device_cli.register(commands)
    hub_cli.register(commands)
    simulator = simulator_commands()
    if simulator is not None:
        simulator.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
