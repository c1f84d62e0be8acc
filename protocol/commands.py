"""Commands to a terminal (`pingjia/v1/<device>/cmd`), signed by the hub (v2).

The clerk's PC and the queue system ask the hub, which checks the request and signs the command;
a terminal takes only commands signed by the hub key it pinned at pairing, each with a counter `n`
above the last one it took (so a replayed command does nothing), and, when it knows the hub's time,
no older than CMD_MAX_AGE_MS (so a command held back by an attacker is not acted on later).

What each command does is data (`MEANING`), next to the names, so that the spec's table is drawn
from it; the fields are a `Field` table for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from protocol import limits, signed
from protocol.fields import DEVICE_ID, Field, bad_field, decode_fields, envelope, integer, matching, one_of, text
from protocol.keys import SigningKey, VerifyKey
from protocol.signed import Purpose

__all__ = [
    "COMMAND_FIELDS",
    "MEANING",
    "Command",
    "CommandName",
    "decode_command",
    "encode_command",
    "verify_command",
]


class CommandName(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    INVITE = "invite"


MEANING: Final[dict[CommandName, str]] = {
    CommandName.LOGIN: (
        "a clerk (`staff`) starts at this terminal, in place of whoever was logged in; an open invitation "
        "of the previous clerk becomes a `timeout` record"
    ),
    CommandName.LOGOUT: "the clerk leaves: the terminal closes, and presses count for no one until the next login",
    CommandName.INVITE: (
        "请评价: the customer just served may rate, once, within the terminal's invite window (optionally "
        "naming the service `ticket`); refused while nobody is logged in"
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    device: str
    cmd: CommandName
    staff: str | None = None  # login only
    ticket: str | None = None  # invite only
    id: str | None = None  # the sender's reference, echoed in the terminal's log
    n: int = 0  # the hub's counter for this terminal: a terminal takes only a higher one
    t: int = 0  # hub clock (UTC ms) when signed
    sig: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "cmd": self.cmd.value,
            "staff": self.staff,
            "ticket": self.ticket,
            "id": self.id,
            "n": self.n,
            "t": self.t,
            "sig": self.sig,
        }


COMMAND_FIELDS: Final[dict[str, Field]] = {
    **envelope("cmd", limits.CONTROL_VERSION),
    "device": matching(DEVICE_ID, doc="the terminal the command is for: the topic's device"),
    "cmd": one_of((c.value for c in CommandName), doc="what to do (below)"),
    "staff": text(limits.MAX_ID_CHARS, required=False, doc="the clerk's staff id: on `login`, and only there"),
    "ticket": text(limits.MAX_TICKET_CHARS, required=False, doc="the queue system's service ticket: `invite` only"),
    "id": text(limits.MAX_ID_CHARS, required=False, doc="the sender's reference, written to the terminal's log"),
    "n": integer(1, limits.MAX_COUNTER, doc="the hub's command counter for this terminal; only a higher one is taken"),
    "t": integer(0, limits.MAX_MS, doc="hub clock when signed, UTC ms; older than CMD_MAX_AGE_MS: `stale`"),
    "sig": signed.SIG_FIELD,
}


def encode_command(command: Command, key: SigningKey) -> bytes:
    """The command's wire bytes, signed with the hub's key."""
    return signed.sign(key, Purpose.CMD, "cmd", command.fields())


def verify_command(command: Command, key: VerifyKey) -> None:
    """AuthError(bad_signature) unless the hub key `key` signed this command."""
    signed.verify(key, Purpose.CMD, "cmd", command.fields(), device=command.device, who="the pinned hub key")


def decode_command(raw: bytes) -> Command:
    obj = decode_fields(raw, "cmd", COMMAND_FIELDS, limits.CONTROL_VERSION)
    command = Command(
        device=obj["device"],
        cmd=CommandName(obj["cmd"]),
        staff=obj.get("staff"),
        ticket=obj.get("ticket"),
        id=obj.get("id"),
        n=obj["n"],
        t=obj["t"],
        sig=obj["sig"],
    )
    if (command.cmd is CommandName.LOGIN) != (command.staff is not None):
        raise bad_field("login, and only login, names a staff member", command.device)
    if command.ticket is not None and command.cmd is not CommandName.INVITE:
        raise bad_field("only invite carries a ticket", command.device)
    return command
