"""The terminal's side of a claim: pairing without a laptop (protocol/claim.py says how it goes).

While the terminal is not paired, `ClaimClient` connects to the claim broker as the claim account
its pairing code names, and asks for its registration: a claim request signed with the terminal's
key, sent again every `retry_s` until the hub answers or the code changes. Until the operator has
typed the code at the hub (`pingjia hub claim CODE ...`) that account does not exist and the broker
refuses it; the client keeps trying, with the link's backoff.

An answer is taken only if it answers this very request (device, key, claim account and the fresh
X25519 key the request carried), its signature holds with the hub key it carries (trust on first
use: only hub accounts may publish on the reply topic, which is named after the code), and the
password sealed in it opens with the request's private X25519 key. Then `on_paired` gets the
`device.pairing.Pairing` (tech `claim:<who entered the code>`), and the client stops claiming
with that code. Anything else is counted (`counters`) and logged, rate-limited, and changes nothing.

The client runs in a thread of its own and never raises into its owner: whatever goes wrong (the
`code` or `on_paired` callables included) is counted, logged and tried again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from device.pairing import Pairing
from protocol import AuthError, DecodeError, SealKey, SigningKey
from protocol import claim as wire
from protocol.topics import claim_topics
from runtime.link import Broker, Client, Inbound, Link, LinkDown, LinkEvent, LinkUp
from runtime.logs import LogLimiter
from runtime.mqtt import MqttBroker, parse_broker_url
from runtime.threads import name_this_thread

__all__ = ["ClaimClient", "Claimed"]

log = logging.getLogger("pingjia.device.claim")

_POLL_S: Final = 0.25  # how often the code is looked at, at most this late


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim answered: what a terminal's `on_paired` posts to its loop, which stores the pairing
    and connects with it (as after a technician's `pair`)."""

    pairing: Pairing


@dataclass(slots=True)
class _Attempt:
    """One claim: one code, one claim connection, one request (and its X25519 key)."""

    code: str
    request: wire.ClaimRequest
    raw: bytes
    reply_key: SealKey
    request_topic: str
    reply_topic: str
    link: Link
    next_send: float = 0.0  # monotonic seconds; 0: at the next chance


class ClaimClient:
    """Claims this terminal's registration over MQTT while `code()` gives a pairing code.

    `broker_url`: the claim broker (mqtt://host:port or mqtts://...; ValueError now if it is not
    one). `device`, `key`: the terminal's id and Ed25519 key. `code()`: the pairing code the
    terminal shows now, None while it is not to claim (paired); it is called from the client's
    thread. `on_paired(pairing)`: called from the client's thread once a claim is answered; if it
    raises, the claim is not taken as done and the code is claimed again (the hub answers a code
    once: the operator enters it again). `retry_s`: seconds between sendings of the request.

    `tls_ca`: a CA certificate (PEM file) to check the broker with; its text becomes the pairing's
    `tls_ca`, so that the terminal's own connection checks the broker the same way. `connect`:
    makes the broker of a claim account from (username, password) (default: the claim broker over
    MQTT, runtime.mqtt); tests give the in-memory one.
    """

    def __init__(
        self,
        broker_url: str,
        device: str,
        key: SigningKey,
        code: Callable[[], str | None],
        on_paired: Callable[[Pairing], None],
        *,
        retry_s: float = 3.0,
        tls_ca: Path | None = None,
        protocol: str = "auto",
        reconnect_max_s: float = 10.0,
        connect: Callable[[str, str], Broker] | None = None,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        url = parse_broker_url(broker_url)  # ValueError for a URL that is not one
        if retry_s <= 0:
            raise ValueError(f"retry_s must be positive, got {retry_s}")
        self._ca_text: str | None = None
        if tls_ca is not None:
            try:
                self._ca_text = tls_ca.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read the CA certificate {tls_ca}: {exc}") from None
        self.broker_url = broker_url
        self.device = device
        self.retry_s = retry_s
        self.counters: Counter[str] = Counter()
        self._key = key
        self._code = code
        self._on_paired = on_paired
        self._wall_ms = wall_ms
        if connect is None:

            def connect(username: str, password: str) -> Broker:
                return MqttBroker(
                    url=url,
                    protocol=protocol,
                    reconnect_min_s=min(0.5, retry_s),
                    reconnect_max_s=max(reconnect_max_s, retry_s),
                    username=username,
                    password=password,
                    tls_ca=None if tls_ca is None else str(tls_ca),
                )

        self._connect = connect
        self._events: queue.Queue[tuple[_Attempt, LinkEvent]] = queue.Queue()
        self._attempt: _Attempt | None = None
        self._shown: str | None = None  # the code last seen
        self._done: set[str] = set()  # codes whose claim was answered and taken
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._limited = LogLimiter(log)
        self._claimed = threading.Event()

    # -- the owner's side -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a ClaimClient is started once")
        self._thread = threading.Thread(target=self._run, name=f"claim-{self.device}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the claim connection and the thread (whatever it was doing)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def claimed(self) -> bool:
        """True once a claim was answered and `on_paired` took it."""
        return self._claimed.is_set()

    @property
    def connected(self) -> bool:
        """True while the claim connection is up (the claim account exists on the broker)."""
        attempt = self._attempt
        return attempt is not None and attempt.link.connected

    @property
    def refused(self) -> str | None:
        """Why the broker refused the claim connection last (no such account yet), or None."""
        attempt = self._attempt
        refusal = getattr(attempt.link, "refusal", None) if attempt is not None else None
        return refusal if isinstance(refusal, str) else None

    # -- the client's thread --------------------------------------------------------------------------

    def _run(self) -> None:
        name_this_thread("pj-claim")
        try:
            while not self._stopping.is_set():
                try:
                    self._turn()
                except Exception as exc:  # noqa: BLE001 - the claim outlives any one fault; it is counted and said
                    self.counters["faults"] += 1
                    self._limited.log(logging.ERROR, "fault", "%s: claim fault, going on: %r", self.device, exc)
                    self._stopping.wait(self.retry_s)
        finally:
            self._close()

    def _turn(self) -> None:
        code = self._current_code()
        if code != self._shown:
            self._close()
            self._shown = None  # stays so if opening fails: it is tried again at the next turn
            if code is not None and code not in self._done:
                self._open(code)
            self._shown = code
        try:
            attempt, event = self._events.get(timeout=_POLL_S)
        except queue.Empty:
            attempt, event = None, None
        if attempt is not None and attempt is self._attempt and event is not None:
            self._take(attempt, event)
        self._send_due()

    def _current_code(self) -> str | None:
        try:
            code = self._code()
        except Exception as exc:  # noqa: BLE001 - the owner's callable: its fault must not end the claim
            self.counters["code_errors"] += 1
            self._limited.log(logging.ERROR, "code", "%s: asking for the pairing code failed: %r", self.device, exc)
            return self._shown
        return code if isinstance(code, str) else None

    def _open(self, code: str) -> None:
        try:
            account, password = wire.claim_user(code), wire.claim_password(code)
        except ValueError as exc:
            self.counters["bad_codes"] += 1
            self._limited.log(logging.ERROR, "code", "%s: cannot claim: %s", self.device, exc)
            return
        reply_key = SealKey.generate()
        raw = wire.encode_request(self._key, code=code, device=self.device, reply_key=reply_key.public_hex)
        request_topic, reply_topic = claim_topics(account)
        broker = self._connect(account, password)
        holder: list[_Attempt] = []

        def on_event(event: LinkEvent) -> None:  # any thread: only queued, tagged with its claim
            if holder:
                self._events.put((holder[0], event))

        link = broker.connect(Client(client_id=account, on_event=on_event, subscriptions=[(reply_topic, 1)]))
        attempt = _Attempt(
            code=code,
            request=wire.decode_request(raw),
            raw=raw,
            reply_key=reply_key,
            request_topic=request_topic,
            reply_topic=reply_topic,
            link=link,
        )
        holder.append(attempt)
        self._attempt = attempt
        log.info("%s: claiming its registration through %s at %s", self.device, account, self.broker_url)
        link.start()

    def _close(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            try:
                attempt.link.stop()
            except Exception as exc:  # noqa: BLE001 - a link that fails to stop is gone all the same
                self._limited.log(
                    logging.WARNING, "stop", "%s: the claim link did not stop cleanly: %r", self.device, exc
                )

    def _take(self, attempt: _Attempt, event: LinkEvent) -> None:
        if isinstance(event, LinkUp):
            attempt.next_send = 0.0  # send at once: the reply topic is subscribed now
        elif isinstance(event, LinkDown):
            log.info("%s: claim connection ended: %s", self.device, event.reason)
        elif isinstance(event, Inbound) and event.topic == attempt.reply_topic:
            self._answer(attempt, event.payload)

    def _send_due(self) -> None:
        attempt = self._attempt
        if attempt is None or not attempt.link.connected or time.monotonic() < attempt.next_send:
            return
        if attempt.link.publish(attempt.request_topic, attempt.raw, qos=1):
            self.counters["requests"] += 1
            attempt.next_send = time.monotonic() + self.retry_s

    def _answer(self, attempt: _Attempt, payload: bytes) -> None:
        try:
            reply = wire.decode_reply(payload)
            wire.verify_reply(reply, attempt.request)
            password = wire.open_password(reply, attempt.reply_key)
        except (DecodeError, AuthError) as exc:
            self.counters["bad_replies"] += 1
            self._limited.log(logging.WARNING, exc.reason.value, "%s: claim answer refused: %s", self.device, exc)
            return
        pairing = Pairing(
            hub_sign=reply.hub_sign,
            hub_seal=reply.hub_seal,
            broker=reply.broker or self.broker_url,
            username=reply.username,
            password=password,
            tls_ca=self._ca_text,
            site=reply.site or "",
            department=reply.department,
            counter=reply.counter,
            paired_ms=self._wall_ms(),
            tech=f"claim:{reply.by}",
        )
        self._close()
        try:
            self._on_paired(pairing)
        except Exception as exc:  # noqa: BLE001 - the owner's callable: say so, and claim again
            self.counters["not_taken"] += 1
            self._limited.log(logging.ERROR, "taken", "%s: the claimed pairing was not taken: %r", self.device, exc)
            self._shown = None  # opens the claim again at the next turn
            return
        self._done.add(attempt.code)
        self.counters["claimed"] += 1
        self._claimed.set()
        log.warning(
            "%s: claimed its registration: hub %s, %s/%s",
            self.device,
            reply.hub_sign[:16],
            reply.department,
            reply.counter,
        )
