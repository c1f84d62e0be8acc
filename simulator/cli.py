"""The `pingjia` command.

It lives in simulator/ because this is the one package that sees all the others; each package
registers its own subcommands, and heavy imports happen only inside the chosen one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    from device import cli as device_cli
    from hub import cli as hub_cli
    from simulator import commands as simulator_cli

    parser = argparse.ArgumentParser(prog="pingjia", description="counter-top satisfaction terminals and their hub")
    commands = parser.add_subparsers(dest="command", required=True)
    device_cli.register(commands)
    hub_cli.register(commands)
    simulator_cli.register(commands)
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
