"""A site set up the way its people set up a real one, each step through the product's own commands:

- the operator: `pingjia hub init` (the hub's keys), `hub add-technician`, `hub tech-credential`, and
  with Mosquitto `hub broker-config` (anonymous off, an account and an ACL per terminal);
- the hub: `pingjia hub serve` with its broker password;
- the technician: `pingjia tech pair` over each terminal's console cable, confirming the code the
  terminal shows.

The demo, the benchmarks and the closed-fleet tests use it, so that what they show is the path a
site takes. With the embedded broker (amqtt, for a machine with nothing installed) there are no
broker accounts: pairing still pins the hub's key and gives each terminal its account, which that
broker does not check.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from simulator.cable import Cable
from simulator.processes import PYTHON, HubProcess, ProcessError, SiteBroker, TerminalProcess, free_port

__all__ = ["Site"]

TECHNICIAN = "site-tech"


class Site:
    def __init__(self, folder: Path, *, db: str, mosquitto: bool, broker_url: str | None = None) -> None:
        """`mosquitto`: run a Mosquitto with the site's accounts and ACL (`broker_url` is then made);
        otherwise terminals and hub use `broker_url` (an embedded broker the caller runs)."""
        self.folder = folder
        self.db = db
        self.mosquitto = mosquitto
        self.hub_key = folder / "hub.key"
        self.credential = folder / "technician.credential"
        self.broker_dir = folder / "broker"
        self.broker: SiteBroker | None = None
        self.port = free_port() if mosquitto else 0
        self.broker_url = f"mqtt://127.0.0.1:{self.port}" if mosquitto else broker_url or ""
        self.hub_sign = ""

    # -- the operator ---------------------------------------------------------------------------------

    def setup(self) -> Site:
        """Everything before the first terminal; again on a site made before, it keeps the hub's keys
        (its terminals pinned them) and issues a fresh credential."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.hub_key.exists():
            from hub import identity

            self.hub_sign = identity.load(self.hub_key).sign_hex
        else:
            self.hub_sign = str(self._pingjia("hub", "init", "--hub-key", str(self.hub_key))["sign"])
        self._pingjia("hub", "add-technician", "--db", self.db, "--name", TECHNICIAN)
        credential = self._run(
            "hub", "tech-credential", "--db", self.db, "--hub-key", str(self.hub_key), "--name", TECHNICIAN
        )
        self.credential.write_text(credential, encoding="utf-8")
        os.chmod(self.credential, 0o600)
        if self.mosquitto:
            argv = ["hub", "broker-config", "--db", self.db, "--out", str(self.broker_dir), "--port", str(self.port)]
            if os.geteuid() == 0:
                argv += ["--run-as", "root"]  # a test's folders are root's: stay root, as MosquittoBroker does
            self._pingjia(*argv)
            self.broker = SiteBroker(self.broker_dir / "mosquitto.conf", self.port)
            self.broker.start()
        return self

    def hub(self, *, log: Path, client_id: str = "pingjia-hub") -> HubProcess:
        # With accounts, the hub also rewrites them after a terminal claims its registration.
        extra = ["--broker-secret", str(self.secret), "--broker-site", str(self.broker_dir)] if self.mosquitto else []
        return HubProcess(
            db=self.db,
            broker_url=self.broker_url,
            log=log,
            hub_key=self.hub_key,
            extra=extra,
            client_id=client_id,
            watch_as=self.control_account(),
        )

    @property
    def secret(self) -> Path:
        return self.broker_dir / "hub.secret"

    def control_account(self) -> tuple[str, str] | None:
        """The hub's account for control commands (`hub command`, `hub configure`), which may also
        watch hub statuses; None without broker accounts."""
        if not self.mosquitto:
            return None
        from hub.brokerconf import load_hub_secret

        return "pingjia-hub-control", load_hub_secret(self.secret)["pingjia-hub-control"]

    def control(self, *argv: str) -> dict[str, object]:
        """`pingjia hub command|configure ...` as the operator runs it on the hub's machine."""
        more = ["--broker-secret", str(self.secret)] if self.mosquitto else []
        return self._pingjia(
            "hub",
            argv[0],
            "--db",
            self.db,
            "--hub-key",
            str(self.hub_key),
            "--broker",
            self.broker_url,
            *more,
            *argv[1:],
        )

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()

    # -- the technician -------------------------------------------------------------------------------

    def terminal(
        self,
        data_dir: Path,
        cable: Cable,
        *,
        settings: list[str],
        log: Path,
        broker_url: str | None = None,
        fingers: Path | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> TerminalProcess:
        """A terminal with its console on `cable` and no hub key but the one pairing gives it: fresh
        from the box, it has no broker either until paired (unless `broker_url`, which overrides the
        one pairing gives, as for the demo's embedded broker on a new port at every run).
        `fingers`, `args`, `env`: a touchscreen's, as for TerminalProcess."""
        settings = [*settings, f"console_port={cable.link.absolute()}"]
        return TerminalProcess(
            data_dir,
            broker_url=broker_url,
            settings=settings,
            log=log,
            hub_key="",
            fingers=fingers,
            args=args,
            env=env,
        )

    def pair(self, terminal: TerminalProcess, cable: Cable, *, department: str, counter: str) -> dict[str, object]:
        """`pingjia tech pair` over the terminal's cable, with the code the terminal shows."""
        from device.events import PairingCodeShown

        terminal.wait_for(lambda t: t.of(PairingCodeShown), 30, "the terminal to show its pairing code")
        code = terminal.of(PairingCodeShown)[-1].code
        argv = [
            "tech",
            "pair",
            "--port",
            cable.tool_port,
            "--credential",
            str(self.credential),
            "--db",
            self.db,
            "--hub-key",
            str(self.hub_key),
            "--broker",
            self.broker_url,
            "--department",
            department,
            "--counter",
            counter,
            "--code",
            code,
        ]
        if self.mosquitto:
            argv += ["--broker-site", str(self.broker_dir)]
        return self._pingjia(*argv)

    def claim(self, code: str, *, department: str, counter: str) -> dict[str, object]:
        """`pingjia hub claim CODE`: the operator types the code a terminal shows, at the hub."""
        argv = ["hub", "claim", code, "--department", department, "--counter", counter]
        argv += ["--by", TECHNICIAN, "--db", self.db]
        if self.mosquitto:
            argv += ["--broker-site", str(self.broker_dir)]
        return self._pingjia(*argv)

    # -- running the commands -------------------------------------------------------------------------

    def _run(self, *argv: str) -> str:
        started = time.monotonic()
        done = subprocess.run([PYTHON, "-m", "pingjia", *argv], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise ProcessError(
                f"pingjia {' '.join(argv[:2])} failed ({done.returncode}, {time.monotonic() - started:.1f} s): "
                f"{done.stderr.strip()[-500:]}"
            )
        return done.stdout

    def _pingjia(self, *argv: str) -> dict[str, object]:
        document = json.loads(self._run(*argv))
        if not isinstance(document, dict):
            raise ProcessError(f"pingjia {' '.join(argv[:2])} printed {document!r}")
        return document
