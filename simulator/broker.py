"""The embedded broker for `make run` on a machine with nothing installed: amqtt (MQTT 3.1.1).

    python -m simulator.broker --port N

Runs until SIGTERM/SIGINT, or until its standard input closes (the demo that started it is gone).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from runtime.lifeline import hold_lifeline


async def serve(host: str, port: int) -> None:
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 10_000}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    print(f"broker listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    if not sys.stdin.isatty():
        hold_lifeline(sys.stdin.fileno(), lambda: loop.call_soon_threadsafe(stop.set))
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator.broker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
