"""An in-memory backend for tests: a test presses keys, taps cards and answers a screen's follow-up
questions; what the terminal showed and refused is kept, in order. The terminal under test is the
real one (STYLE.md habit 4)."""

from __future__ import annotations

from collections.abc import Mapping

from device.config import DeviceConfig
from device.flow import Details, Invite, Login, Logout, Phone, Press
from device.io import CardTap, IoDown, IoStatus, IoUp, Post, Quit, Screen
from protocol import PanelState

__all__ = ["FakeIo"]


class FakeIo:
    def __init__(self, *, panel: PanelState = PanelState.NONE) -> None:
        self.screens: list[Screen] = []
        self.refusals = 0
        self.configs: list[DeviceConfig] = []  # every configure, in order
        self.started = False
        self._post: Post | None = None
        self._panel = panel
        self._fw: str | None = None

    # -- what the terminal asks ---------------------------------------------------------------------

    def start(self, post: Post) -> None:
        self._post = post
        self.started = True

    def stop(self) -> None:
        self.started = False

    def show(self, screen: Screen) -> None:
        self.screens.append(screen)

    def configure(self, config: DeviceConfig) -> None:
        self.configs.append(config)

    def refuse(self) -> None:
        self.refusals += 1

    def status(self) -> IoStatus:
        return IoStatus(panel=self._panel, fw=self._fw, dropped=None if self._panel is PanelState.NONE else 0)

    @property
    def bounces(self) -> int:
        return 0

    # -- what a test does ---------------------------------------------------------------------------

    @property
    def screen(self) -> Screen | None:
        return self.screens[-1] if self.screens else None

    def post(self, item: object) -> None:
        assert self._post is not None, "start the terminal first"
        self._post(item)

    def press(self, key: int) -> None:
        self.post(Press(key))

    def invite(self, ticket: str | None = None) -> None:
        self.post(Invite(ticket))

    def login(self, staff: str) -> None:
        self.post(Login(staff))

    def logout(self) -> None:
        self.post(Logout())

    def card(self, uid: str) -> None:
        self.post(CardTap(uid))

    def details(
        self,
        *,
        reasons: tuple[int, ...] = (),
        subscores: Mapping[str, int] | None = None,
        phone: str | None = None,
        done: bool = False,
    ) -> None:
        """Answer the follow-up questions as a screen does: everything answered so far, each time."""
        self.post(
            Details(
                reasons=reasons,
                subscores=tuple((subscores or {}).items()),
                phone=None if phone is None else Phone(phone),
                done=done,
            )
        )

    def quit(self) -> None:
        self.post(Quit("test"))

    def plug(self, fw: str = "panel-1.0", serial: str = "PJP-000001") -> None:
        self._panel, self._fw = PanelState.CONNECTED, fw
        self.post(IoUp(fw, serial))

    def unplug(self, reason: str = "unplugged") -> None:
        self._panel = PanelState.DISCONNECTED
        self.post(IoDown(reason))
