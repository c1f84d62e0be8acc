"""The simulator's subcommands of `pingjia`: demo, sim, chaos and bench (see pingjia.cli)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="broker + hub + simulated counters on this machine; a live line per second, a table at the end",
    )
    demo.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    demo.add_argument("--devices", type=int, default=6, help="simulated counters (default %(default)s)")
    demo.add_argument("--departments", type=int, default=2)
    demo.add_argument("--speed", type=float, default=1.0, help="customers per minute scale (default %(default)s)")
    demo.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("PINGJIA_DEMO_DATA", "var/demo")),
        help="working directory (default $PINGJIA_DEMO_DATA or %(default)s)",
    )
    demo.add_argument(
        "--broker",
        default=os.environ.get("PINGJIA_BROKER"),
        help="use this broker (mqtt://host:port) instead of starting the embedded one (default $PINGJIA_BROKER)",
    )
    demo.add_argument("--quiet", action="store_true", help="no live line; only the final JSON")
    demo.add_argument(
        "--screen",
        action="store_true",
        help="counter 1 has a touchscreen, shown in an 800x480 window (headless, saying so, without a display)",
    )
    demo.set_defaults(func=_demo)

    sim = commands.add_parser(
        "sim", help="a hall's working day faster than real time, with clerks, queue, misuse and faked ratings"
    )
    sim.add_argument("--devices", type=int, default=12, help="counters, each a real terminal with its panel")
    sim.add_argument(
        "--touch",
        type=int,
        default=0,
        metavar="N",
        help="N of the counters have a touchscreen (--keys touch, headless: SDL's dummy drivers) instead of a "
        "key panel; their customers tap what the screen draws (default %(default)s)",
    )
    sim.add_argument("--hours", type=float, default=8.0, help="simulated hours of the day (from 08:15)")
    sim.add_argument("--speed", type=float, default=120.0, help="simulated seconds per real second")
    sim.add_argument("--seed", type=int)
    sim.add_argument("--data", type=Path, default=Path("var/sim"), help="working directory (emptied first)")
    sim.add_argument(
        "--broker", default=os.environ.get("PINGJIA_BROKER"), help="use this broker instead of starting one"
    )
    sim.add_argument("--quiet", action="store_true")
    sim.add_argument(
        "--fakers",
        type=int,
        help="counters' clerks who fake ratings, one way each (default: a few, max(ways, clerks // 8); 0: honest)",
    )
    sim.add_argument(
        "--fakes",
        type=_fakes,
        help="comma-separated ways of faking, taken in turn: self_press,covered_keys,selective_invite (default all)",
    )
    sim.set_defaults(func=_sim)

    chaos = commands.add_parser("chaos", help="a hall under random faults; fails unless nothing was lost or doubled")
    chaos.add_argument("--seconds", type=float, default=300, help="how long faults are injected (default %(default)s)")
    chaos.add_argument("--devices", type=int, default=6)
    chaos.add_argument("--seed", type=int, help="replay a run: the seed it printed")
    chaos.add_argument("--data", type=Path, default=Path("var/chaos"), help="working directory (emptied first)")
    chaos.set_defaults(func=_chaos)

    bench = commands.add_parser("bench", help="measure the figures the issues name; one JSON object")
    bench.add_argument("--quick", action="store_true", help="smaller sizes (minutes, not tens of minutes)")
    bench.add_argument("--json", action="store_true", help="print only the JSON object")
    bench.add_argument(
        "--only",
        help="comma-separated steps: transport,live,drain,durable,growth,hub,terminal,report,make_run,reconnect,"
        "pair,stall,province,explain,supervision,touch",
    )
    bench.set_defaults(func=_bench)


def _demo(args: argparse.Namespace) -> int:
    from simulator.demo import Demo

    return Demo(
        data=args.data,
        devices=args.devices,
        departments=args.departments,
        speed=args.speed,
        broker_url=args.broker,
        quiet=args.quiet,
        screen=args.screen,
    ).run(args.seconds)


def _bench(args: argparse.Namespace) -> int:
    from simulator.bench import main_json, run

    only = set(args.only.split(",")) if args.only else None
    print(main_json(run(quick=args.quick, only=only)))
    return 0


def _chaos(args: argparse.Namespace) -> int:
    import shutil

    from simulator.chaos import main

    shutil.rmtree(args.data, ignore_errors=True)
    return main(args.seconds, args.devices, args.data, args.seed)


def _fakes(text: str) -> tuple[str, ...]:
    from simulator.sim import FAKES

    named = tuple(part.strip() for part in text.split(",") if part.strip())
    if not named or any(name not in FAKES for name in named):
        raise argparse.ArgumentTypeError(f"give some of {','.join(FAKES)}, comma-separated; got {text!r}")
    return named


def _sim(args: argparse.Namespace) -> int:
    import json
    import shutil
    import sys

    from simulator.sim import FAKES, Sim

    if args.fakers is not None and not 0 <= args.fakers <= args.devices:
        print(f"pingjia sim: --fakers must be 0..{args.devices} (one clerk per counter)", file=sys.stderr)
        return 2
    if not 0 <= args.touch <= args.devices:
        print(f"pingjia sim: --touch must be 0..{args.devices} (touchscreen counters)", file=sys.stderr)
        return 2
    shutil.rmtree(args.data, ignore_errors=True)
    result = Sim(
        devices=args.devices,
        hours=args.hours,
        speed=args.speed,
        data=args.data,
        seed=args.seed,
        broker_url=args.broker,
        quiet=args.quiet,
        fakers=args.fakers,
        fakes=args.fakes or FAKES,
        touch=args.touch,
    ).run()
    print(json.dumps(result, ensure_ascii=False))
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1
