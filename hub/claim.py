"""Claims at the hub: pairing a terminal without a laptop (protocol/claim.py says how it goes).

- `pingjia hub claim CODE --department D --counter C --by NAME` (`enter_code`, a write function of
  the writer): the operator types the code an unpaired terminal shows. The hub keeps a row of
  `pairing_codes` and opens the claim account the code names (role `claim`, 10 minutes), and with
  `--broker-site` has the site's Mosquitto take it at once.
- `ClaimDesk.handle` (a write function too, run by `hub serve`'s writer on each message of
  `pingjia/claim/+/request`): checks the request, registers the terminal (hub.pairing), spends the
  code, closes the claim account, and returns the signed answer to publish.

The `pairing_codes` row of a claim: `code_hash` is the claim account's name, which is the code's
hash (SHA-256 with a label of its own, see `protocol.claim.claim_user`): the hub finds the row by
the topic a request comes on, and keeps no code. `device` is empty until the claim, unless the
operator pinned the terminal (`--device`); from the claim on it names the terminal that claimed,
and `pubkey` its key. `made_by` is who entered the code: a registered technician, since the
terminal is registered as paired by them.

Rules:

- A code entered again before it is claimed replaces the first entry (placement, expiry). A code
  claimed less than 10 minutes ago is opened again for the terminal that claimed it only (its
  device id and key), and stays kept for it while that entry is open: that is the same code typed
  twice, or a terminal whose answer was lost and still shows the code; anyone else who read the
  code off the screen must not claim in its place. Later a code is free again (codes are 6 digits:
  they come round).
- A request that is not answered gets nothing (no refusal): one for a claim account the hub does
  not know, an expired or spent code, a request that does not decode or whose signature does not
  hold, one from another terminal than the pinned one, or a terminal the hub cannot pair (another
  key under its id, a technician revoked meanwhile). Whoever holds a claim account holds only the
  code, so a refusal would tell an intruder more than the terminal: the terminal sends its request
  again until its code changes. Each is counted and logged (rate-limited).
- The answer is made once: a second request on a spent code (the terminal's retry, crossing the
  answer) gets nothing, and several hub workers answering the same account cannot both register
  (the code is spent by one conditional UPDATE, before anything else is written).
- After an answer the broker's accounts change (the terminal's account is new, the claim account
  closed): `hub serve` rewrites the site and reloads Mosquitto a moment after publishing the answer
  (`ClaimDesk.serve`, `ClaimDesk.tick`), so that the answer reaches the terminal before its claim
  connection is cut. The terminal's first connections with its new account may be refused until
  then; it retries with backoff.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hub import brokerconf
from hub.db import Database
from hub.errors import HubError
from hub.identity import HubKeys
from hub.pairing import PairingError, check_pairable, check_technician, register_paired
from hub.registry import RESERVED_PREFIXES
from hub.writer import Writer
from protocol import AuthError, DecodeError, valid_device_id
from protocol import claim as wire
from protocol.topics import CLAIM_REQUEST_FILTER, claim_topics, claim_user_of
from runtime.link import Inbound, Link
from runtime.logs import LogLimiter

__all__ = [
    "ClaimDesk",
    "ClaimError",
    "ClaimTicket",
    "add_command",
    "claim_filter",
    "enter_code",
    "is_claim",
]

log = logging.getLogger("pingjia.hub.claim")

_PLACE_CHARS: Final = 64
_REFRESH_DELAY_S: Final = 1.0  # from publishing an answer to cutting the claim connection


class ClaimError(PairingError):
    """A code, placement or operator `hub claim` does not take."""


@dataclass(frozen=True, slots=True)
class ClaimTicket:
    """What `enter_code` opened: the claim account, good until `expires_ms` (UTC ms)."""

    account: str
    expires_ms: int
    site: str
    department: str
    counter: str
    by: str
    device: str | None  # only this terminal may claim
    pubkey: str | None  # and only with this key (a code claimed a moment ago, opened again)
    replaced: bool  # an unclaimed entry of the same code was there, and is replaced


# -- the operator's side ---------------------------------------------------------------------------


def _check_place(value: str, name: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= _PLACE_CHARS or not value.isprintable():
        raise ClaimError(f"{name} {value!r} must be 1..{_PLACE_CHARS} printable characters")


def enter_code(
    db: Database,
    code: str,
    *,
    department: str,
    counter: str,
    by: str,
    now_ms: int,
    site: str = "",
    device: str | None = None,
) -> ClaimTicket:
    """Open the claim of pairing code `code` (a write function: `Writer.write`): the terminal that
    claims with it is registered at `department`, `counter` (and `site`), as paired by technician
    `by`, if it claims before `now_ms` (UTC ms) + 10 minutes; `device`: only that terminal may.

    A code claimed in the last 10 minutes is opened again for the terminal that claimed it only.
    ClaimError for a code that is not 6 digits, a placement that is not printable text of 1..64
    characters, a `device` no terminal can have or other than the one that claimed the code in the
    last 10 minutes; PairingError if `by` is not an active technician. The broker takes the account
    at the next rewrite of the site (`brokerconf.refresh_accounts`).
    """
    try:
        account = wire.claim_user(code)
    except ValueError as exc:
        raise ClaimError(str(exc)) from None
    _check_place(department, "department")
    _check_place(counter, "counter")
    if site:
        _check_place(site, "site")
    if device is not None and (
        not valid_device_id(device) or any(device.startswith(prefix) for prefix in RESERVED_PREFIXES)
    ):
        raise ClaimError(f"device id {device!r} is not one a terminal can have")
    db.require_transaction("claims")
    check_technician(db, by)
    row = db.execute(
        "SELECT used_ms, expires_ms, device, pubkey FROM pairing_codes WHERE code_hash = ?", (account,)
    ).fetchone()
    replaced, pubkey = False, None
    if row is not None:
        used_ms, expires_ms, claimed_by, claimed_key = row
        open_now = used_ms is None and int(expires_ms) > now_ms
        claimed_lately = used_ms is not None and now_ms - int(used_ms) < wire.CLAIM_LIFETIME_MS
        if claimed_by and claimed_key and (claimed_lately or open_now):  # kept for that terminal: it stays so
            if device not in (None, claimed_by):
                raise ClaimError(f"code {code} was claimed by terminal {claimed_by} a moment ago, not by {device}")
            device, pubkey = str(claimed_by), str(claimed_key)
        replaced = open_now
        db.execute("DELETE FROM pairing_codes WHERE code_hash = ?", (account,))
    expires = now_ms + wire.CLAIM_LIFETIME_MS
    db.execute(
        "INSERT INTO pairing_codes(code_hash, device, pubkey, site, department, counter, made_ms, expires_ms, made_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (account, device, pubkey, site, department, counter, now_ms, expires, by),
    )
    password_hash = brokerconf.hash_password(wire.claim_password(code))
    brokerconf.add_broker_user(db, account, password_hash, role="claim", expires_ms=expires)
    return ClaimTicket(
        account=account,
        expires_ms=expires,
        site=site,
        department=department,
        counter=counter,
        by=by,
        device=device,
        pubkey=pubkey,
        replaced=replaced,
    )


# -- the hub's side --------------------------------------------------------------------------------


def is_claim(name: str) -> bool:
    """Whether a topic is a claim request's (`pingjia/claim/<claim-user>/request`)."""
    try:
        claim_user_of(name)
    except DecodeError:
        return False
    return True


def claim_filter(share_group: str | None = None) -> str:
    """The subscription of a hub worker to claim requests; with a group, an MQTT 5 shared one (one
    worker answers each request)."""
    return CLAIM_REQUEST_FILTER if share_group is None else f"$share/{share_group}/{CLAIM_REQUEST_FILTER}"


class _Unanswered(Exception):
    """A claim request the desk leaves unanswered: `kind` counts it, `detail` says why."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Entry:
    device: str | None
    pubkey: str | None
    site: str
    department: str
    counter: str
    expires_ms: int
    used_ms: int | None
    by: str


class ClaimDesk:
    """Answers terminals' claim requests for one hub worker (see the module docstring for the rules).

    `keys` sign the answers; `broker`, if set, is the broker URL answers give the terminals (None:
    they keep the one they claimed through). `broker_site` and `db_url`: the site `serve` and
    `tick` rewrite and reload after an answer (None: the accounts reach the broker at the next
    rewrite by someone else). `counters` counts answers (`claimed`) and each kind of request left
    unanswered.
    """

    def __init__(
        self,
        keys: HubKeys,
        *,
        broker: str | None = None,
        broker_site: Path | None = None,
        db_url: str | None = None,
        refresh_delay_s: float = _REFRESH_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if broker_site is not None and db_url is None:
            raise ValueError("a broker site is rewritten from the hub database: give db_url too")
        self.keys = keys
        self.broker = broker
        self.broker_site = broker_site
        self.db_url = db_url
        self.refresh_delay_s = refresh_delay_s
        self.counters: Counter[str] = Counter()
        self._clock = clock
        self._refresh_at: float | None = None
        self._limited = LogLimiter(log)

    # -- the write function ----------------------------------------------------------------------------

    def handle(self, db: Database, topic: str, payload: bytes, now_ms: int) -> tuple[str, bytes] | None:
        """The answer (topic, payload) to the claim request `payload` that arrived on `topic`, having
        registered the terminal, spent the code and closed the claim account at `now_ms` (UTC ms);
        None, with nothing written, for a request that is not answered. A write function
        (`Writer.write`): it raises only if the store fails (StoreError), or for a pairing the
        checks passed and the write then refused (PairingError; the transaction is rolled back)."""
        db.require_transaction("claims")
        try:
            account, entry, request = self._checked(db, topic, payload, now_ms)
            password = brokerconf.new_password()
            try:
                sealed = wire.seal_password(request, password)
            except DecodeError as exc:
                raise _Unanswered(exc.reason.value, f"a claim request through {account} refused: {exc}") from None
            spent = db.execute(
                "UPDATE pairing_codes SET used_ms = ?, device = ?, pubkey = ? "
                "WHERE code_hash = ? AND used_ms IS NULL AND expires_ms > ?",
                (now_ms, request.device, request.pubkey, account, now_ms),
            )
            if spent.rowcount != 1:  # another worker spent it since it was read
                raise _Unanswered("spent", f"a claim request through {account}: its code was claimed already")
        except _Unanswered as why:
            self.counters[why.kind] += 1
            self._limited.log(logging.WARNING, why.kind, "hub: %s", why.detail)
            return None
        login = register_paired(
            db,
            device=request.device,
            pubkey=request.pubkey,
            site=entry.site,
            department=entry.department,
            counter=entry.counter,
            tech=entry.by,
            now_ms=now_ms,
            password=password,
        )
        brokerconf.revoke_broker_user(db, account, now_ms)
        db.execute(
            "INSERT INTO device_events(device, at_ms, t_device, kind, detail) VALUES (?, ?, ?, ?, ?)",
            (request.device, now_ms, now_ms, "claimed", f"claimed its registration with the code {entry.by} entered"),
        )
        reply = wire.ClaimReply(
            account=account,
            device=request.device,
            pubkey=request.pubkey,
            reply_key=request.reply_key,
            hub_sign=self.keys.sign_hex,
            hub_seal=self.keys.seal_hex,
            username=login.username,
            password=sealed,
            department=entry.department,
            counter=entry.counter,
            by=entry.by,
            site=entry.site or None,
            broker=self.broker,
        )
        self.counters["claimed"] += 1
        log.warning(
            "hub: terminal %s claimed its registration (%s/%s, code entered by %s)",
            request.device,
            entry.department,
            entry.counter,
            entry.by,
        )
        return claim_topics(account)[1], wire.encode_reply(reply, self.keys.sign)

    def _checked(self, db: Database, topic: str, payload: bytes, now_ms: int) -> tuple[str, _Entry, wire.ClaimRequest]:
        """(claim account, its entry, the request) of a request to answer; _Unanswered saying why not."""
        try:
            account = claim_user_of(topic)
        except DecodeError:
            raise _Unanswered("bad_topic", f"a claim request on {topic[:120]!r}: not a claim topic") from None
        entry = self._entry(db, account)
        if entry is None:
            raise _Unanswered("unknown_account", f"a claim request through {account}: no such code entered")
        if entry.used_ms is not None:
            raise _Unanswered("spent", f"a claim request through {account}: its code was claimed already")
        if entry.expires_ms <= now_ms:
            raise _Unanswered("expired", f"a claim request through {account}: its code has expired")
        try:
            request = wire.decode_request(payload)
            wire.verify_request(request, account)
        except (DecodeError, AuthError) as exc:
            raise _Unanswered(exc.reason.value, f"a claim request through {account} refused: {exc}") from None
        if (entry.device is not None and request.device != entry.device) or (
            entry.pubkey is not None and request.pubkey != entry.pubkey
        ):
            kept = f"{entry.device} (key {(entry.pubkey or 'any')[:16]})"
            raise _Unanswered("other_device", f"{request.device} claims through {account}, kept for {kept}")
        try:
            check_pairable(db, request.device, request.pubkey)
            check_technician(db, entry.by)
        except PairingError as exc:
            raise _Unanswered("not_pairable", f"{request.device} cannot claim through {account}: {exc}") from None
        return account, entry, request

    def _entry(self, db: Database, account: str) -> _Entry | None:
        row = db.execute(
            "SELECT device, pubkey, site, department, counter, expires_ms, used_ms, made_by FROM pairing_codes "
            "WHERE code_hash = ?",
            (account,),
        ).fetchone()
        if row is None:
            return None
        device, pubkey, site, department, counter, expires_ms, used_ms, by = row
        return _Entry(
            device=device or None,
            pubkey=pubkey or None,
            site=str(site),
            department=str(department),
            counter=str(counter),
            expires_ms=int(expires_ms),
            used_ms=None if used_ms is None else int(used_ms),
            by=str(by),
        )

    # -- in `hub serve`'s writer thread ----------------------------------------------------------------

    def serve(self, writer: Writer, link: Link, message: Inbound, now_ms: int | None = None) -> bool:
        """Take one claim request as `hub serve`'s writer does: `handle` in a transaction of its own,
        publish the answer (QoS 1), acknowledge the message (manual acks), and have the broker site
        rewritten a moment later (`tick`). True if it was answered. Never raises: a store that fails
        is logged and counted (`errors`), and the request acknowledged all the same (the terminal
        sends it again in a few seconds). An answer that cannot be sent (`unsent`) is lost with its
        code: entering the code again opens it for the same terminal, which then claims again."""
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        answer: tuple[str, bytes] | None = None
        try:
            answer = writer.write(self.handle, message.topic, message.payload, now_ms)
        except (HubError, ValueError) as exc:
            self.counters["errors"] += 1
            self._limited.log(logging.ERROR, "errors", "hub: a claim request could not be taken: %s", exc)
        if answer is not None:
            if not link.publish(answer[0], answer[1], qos=1):
                self.counters["unsent"] += 1
                log.error("hub: the claim answer on %s could not be sent (disconnected)", answer[0])
            if self.broker_site is not None:
                self._refresh_at = self._clock() + self.refresh_delay_s
        link.ack(message)
        return answer is not None

    def tick(self) -> int | None:
        """Rewrite the broker site and reload Mosquitto if an answer asked for it and its moment has
        come; the pid signalled, else None. Call it from the writer's loop (every fraction of a
        second). Never raises: a failure is logged and tried again at the next answer."""
        if self._refresh_at is None or self._clock() < self._refresh_at:
            return None
        self._refresh_at = None
        if self.broker_site is None or self.db_url is None:
            return None
        try:
            return brokerconf.refresh_accounts(self.db_url, self.broker_site, time.time_ns() // 1_000_000)
        except (HubError, ValueError, OSError) as exc:
            self.counters["refresh_errors"] += 1
            log.error("hub: claims: the broker site %s was not rewritten: %s", self.broker_site, exc)
            return None

    @property
    def refresh_due(self) -> bool:
        """Whether a rewrite of the broker site is waiting for its moment."""
        return self._refresh_at is not None


# -- `pingjia hub claim` ---------------------------------------------------------------------------


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `claim` to `pingjia hub`'s subcommands."""
    from hub.cli import _add_db

    parser = sub.add_parser(
        "claim",
        help="pair a terminal without a laptop: enter the code it shows; it claims its registration over MQTT",
    )
    parser.add_argument("code", help="the pairing code the terminal shows (6 digits)")
    parser.add_argument("--department", required=True)
    parser.add_argument("--counter", required=True, help="window / counter where the terminal stands")
    parser.add_argument("--site", default="", help="the hall the terminal stands in")
    parser.add_argument("--by", required=True, help="who enters the code: a registered technician (hub add-technician)")
    parser.add_argument("--device", help="only the terminal with this device id may claim with the code")
    _add_db(parser)
    parser.add_argument(
        "--broker-site",
        type=Path,
        help="the broker site `pingjia hub broker-config` wrote: its accounts are rewritten and the broker "
        "reloaded at once, so that the claim account works now",
    )
    parser.set_defaults(func=_claim)


def _claim(args: argparse.Namespace) -> int:
    now = time.time_ns() // 1_000_000
    try:
        code = wire.check_code(str(args.code).strip())
        with Writer.open(args.db) as writer:
            ticket = writer.write(
                enter_code,
                code,
                department=args.department,
                counter=args.counter,
                by=args.by,
                now_ms=now,
                site=args.site,
                device=args.device,
            )
    except (HubError, ValueError) as exc:
        return _fail(str(exc))
    document: dict[str, Any] = {
        "claim_account": ticket.account,
        "expires_ms": ticket.expires_ms,
        "site": ticket.site,
        "department": ticket.department,
        "counter": ticket.counter,
        "by": ticket.by,
        "device": ticket.device,
        "replaced": ticket.replaced,
        "for_key": ticket.pubkey,
    }
    if args.broker_site is None:
        document["note"] = "the claim account works once the broker site is rewritten (hub broker-config)"
    else:
        try:
            document["broker_reloaded"] = brokerconf.refresh_accounts(args.db, args.broker_site, now)
        except (HubError, ValueError, OSError) as exc:
            return _fail(f"the code is entered, but the broker site was not updated: {exc}")
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    return 0


def _fail(detail: str) -> int:
    sys.stderr.write(f"pingjia hub claim: {detail}\n")
    return 2
