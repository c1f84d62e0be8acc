"""The site's Mosquitto: broker accounts, what each may publish and receive, TLS, and the files that hold them.

`pingjia hub broker-config --out DIR` writes a site from the hub database (table broker_users):

    DIR/mosquitto.conf   listeners, accounts, limits (the tuning of hub/mosquitto.conf, the dev/test one)
    DIR/passwd           every active account, as Mosquitto 2.x's password file (PBKDF2-SHA512), 0600
    DIR/acl              who may publish and receive what (below)
    DIR/hub.secret       the hub accounts' own passwords, {username: password}, for `hub serve`, 0600
    DIR/tls/             with --tls: the site's CA (ca.crt: what terminals verify the broker with) and the
                         broker's certificate and key

Accounts and their rights (a username is 1..64 of [A-Za-z0-9_.-], so it can be neither a wildcard nor
break a file's syntax):

    terminal  username = its device id. Publishes pingjia/v1/<id>/{ratings,status,health,event}; receives
              pingjia/v1/<id>/{ack,cmd,config,card} and pingjia/hub/+/status. Written once, as `%u` patterns.
    hub       pingjia-hub, pingjia-hub-<n> (one per worker; the username is also its client id). Receives
              every terminal's ratings/status/health/event (plain or $share/<group>/...) and the claim
              requests; publishes terminals' ack/cmd/config/card, claim replies, and its own hub status.
    claim     claim-<...>, short-lived: publishes pingjia/claim/<name>/request, receives .../reply. Nothing else.
    tech      receives terminals' status, health and events, and the hubs' status (diagnostics); publishes nothing.

Mosquitto 2.0.11 behaviour this relies on (tests/hub/test_brokerconf.py shows each on a real broker):

- A `pattern` applies to every account, whatever its role. So each account that is not a terminal is
  denied `pingjia/v1/<its name>/#`, and a denial wins over any grant, patterns included. The prefixes
  pingjia-hub and claim- belong to their roles, so no terminal can be named like a hub or claim account.
- A `pattern` without %u draws a warning at every start, so the hub status filter every terminal
  reads is a `topic` line of its own account.
- SUBSCRIBE is granted whatever the filter; read access is checked for each message as it is delivered,
  on its topic, for shared subscriptions ($share/<group>/<filter>) alike. A forbidden PUBLISH gets a v5
  PUBACK "not authorized" (0x87); a will is checked when it is sent, and one the account may not
  publish is dropped.
- No username, a wrong password, or an account not in passwd: CONNACK "not authorized" (0x87; MQTT
  3.1.1's return code 5), never "bad user name or password".
- `use_username_as_clientid`: the client id is the username, so a connection of another account can
  never take over a session (the hub's included); a second connection of the same account still does.
- SIGHUP rereads passwd and acl (and, per its manual, the certificates) and disconnects every connected
  client whose account is no longer in passwd: revoking is `revoke_broker_user`, rewriting the site,
  and a SIGHUP. Expired claim accounts leave passwd the same way, at the next rewrite.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import signal
import stat
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hub.db import Database
from hub.errors import HubError, RegistryError
from protocol import valid_device_id
from protocol.topics import HUB_STATUS_FILTER, PREFIX

if TYPE_CHECKING:
    from hub.queries import Reader

__all__ = [
    "ROLES",
    "TUNING",
    "BrokerUser",
    "TlsFiles",
    "add_broker_user",
    "add_command",
    "broker_users",
    "check_broker_user",
    "ensure_hub_secret",
    "hash_password",
    "hub_usernames",
    "load_hub_secret",
    "make_tls",
    "new_password",
    "refresh_accounts",
    "render_site",
    "revoke_broker_user",
    "verify_password",
    "write_site",
]

ROLES: Final = ("terminal", "hub", "claim", "tech")
HUB_NAME: Final = "pingjia-hub"  # the hub's username and client id; workers are pingjia-hub-<n>
CLAIM_PREFIX: Final = "claim-"
HASH_ITERATIONS: Final = 101  # what mosquitto_passwd 2.0 writes
_SALT_BYTES = 12  # idem
_MAX_ITERATIONS = 10_000_000  # verifying never takes more than a few seconds
_HASH = re.compile(r"\$7\$([1-9][0-9]{0,7})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})")

# Terminals' channels: what a terminal publishes, and what it receives (from the hub).
_TERMINAL_PUBLISHES = ("ratings", "status", "health", "event")
_TERMINAL_RECEIVES = ("ack", "cmd", "config", "card")
_CLAIM = "pingjia/claim"

# The settings a site shares with hub/mosquitto.conf (the dev/test configuration), as data: a test
# checks that the two files agree, so that what the tests and benchmarks measure is what a site runs.
TUNING: Final[tuple[tuple[str, str], ...]] = (
    ("persistence", "true"),
    ("autosave_interval", "30"),
    ("max_queued_messages", "100000"),
    ("max_inflight_messages", "1000"),
    ("max_packet_size", "1048576"),
    ("set_tcp_nodelay", "true"),
)


# -- passwords ----------------------------------------------------------------------------------------


def new_password() -> str:
    """A new random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = HASH_ITERATIONS) -> str:
    """`password` as Mosquitto 2.x's password file holds it, as `mosquitto_passwd` writes it:
    `$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512 of the UTF-8 password>` (12 random salt
    bytes by default). ValueError for an empty password or iterations out of 1..10,000,000."""
    if not password:
        raise ValueError("a broker password cannot be empty")
    if not 1 <= iterations <= _MAX_ITERATIONS:
        raise ValueError(f"iterations must be 1..{_MAX_ITERATIONS}, got {iterations}")
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, pw_hash: str) -> bool:
    """True if `password` is the one `pw_hash` (a `$7$` Mosquitto hash) was made from; False for a
    wrong password or a hash that is not one."""
    match = _HASH.fullmatch(pw_hash)
    if match is None:
        return False
    try:
        salt, digest = base64.b64decode(match[2], validate=True), base64.b64decode(match[3], validate=True)
    except binascii.Error:
        return False
    mine = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(match[1]))
    return hmac.compare_digest(mine, digest)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- accounts (write functions of the hub's writer, and a read) --------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerUser:
    username: str
    pw_hash: str = field(repr=False)
    role: str
    device: str | None = None
    added_ms: int = 0
    expires_ms: int | None = None  # UTC ms; claim accounts are short-lived


def check_broker_user(username: str, *, role: str, device: str | None = None) -> None:
    """RegistryError unless `username` may hold an account of `role`: a valid name (what a device id
    may be), the prefix of its role (pingjia-hub, claim-) and no other role's, a terminal named after
    its device."""
    if not valid_device_id(username):
        raise RegistryError(f"broker username {username!r} must be 1..64 of [A-Za-z0-9_.-]")
    if role not in ROLES:
        raise RegistryError(f"broker account role {role!r} is not one of {', '.join(ROLES)}")
    if (role == "hub") != username.startswith(HUB_NAME):
        raise RegistryError(f"broker username {username}: hub accounts, and only they, are named {HUB_NAME}[-<n>]")
    if (role == "claim") != username.startswith(CLAIM_PREFIX):
        raise RegistryError(f"broker username {username}: claim accounts, and only they, are named {CLAIM_PREFIX}...")
    if role == "terminal" and device not in (None, username):
        raise RegistryError(f"a terminal's broker username is its device id: {username} is not {device}")
    if device is not None and not valid_device_id(device):
        raise RegistryError(f"device id {device!r} must be 1..64 of [A-Za-z0-9_.-]")


def add_broker_user(
    db: Database,
    username: str,
    password_hash: str,
    *,
    role: str,
    device: str | None = None,
    expires_ms: int | None = None,
) -> None:
    """Give `username` a broker account (a write function: `Writer.write`), or a new password hash.

    An existing account keeps its role (RegistryError for another one) and is active again if it was
    revoked. A terminal's device is its username. Takes effect at the next `write_site` and reload.
    """
    check_broker_user(username, role=role, device=device)
    if _HASH.fullmatch(password_hash) is None:
        raise RegistryError(f"password hash of {username} is not a Mosquitto $7$ hash (hash_password)")
    db.require_transaction("broker account writes")
    if role == "terminal":
        device = username
    row = db.execute("SELECT role FROM broker_users WHERE username = ?", (username,)).fetchone()
    if row is None:
        db.execute(
            "INSERT INTO broker_users(username, pw_hash, role, device, added_ms, expires_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (username, password_hash, role, device, _now_ms(), expires_ms),
        )
    elif row[0] != role:
        raise RegistryError(f"broker account {username} is a {row[0]} account, not a {role} one")
    else:
        db.execute(
            "UPDATE broker_users SET pw_hash = ?, device = ?, expires_ms = ?, revoked_ms = NULL WHERE username = ?",
            (password_hash, device, expires_ms, username),
        )


def revoke_broker_user(db: Database, username: str, at_ms: int) -> None:
    """Close `username`'s account from `at_ms` (UTC ms) on (a write function: `Writer.write`).

    Revoking a revoked account keeps its first revocation; RegistryError if there is no such account.
    The broker drops the account's connections when it rereads passwd (write_site, then SIGHUP).
    """
    db.require_transaction("broker account writes")
    done = db.execute(
        "UPDATE broker_users SET revoked_ms = ? WHERE username = ? AND revoked_ms IS NULL", (at_ms, username)
    )
    if (
        done.rowcount == 0
        and db.execute("SELECT 1 FROM broker_users WHERE username = ?", (username,)).fetchone() is None
    ):
        raise RegistryError(f"there is no broker account {username!r}")


def broker_users(reader: Reader, now_ms: int) -> list[BrokerUser]:
    """The accounts that may connect at `now_ms` (UTC ms): neither revoked nor expired, by username."""
    rows = reader.execute(
        "SELECT username, pw_hash, role, device, added_ms, expires_ms FROM broker_users "
        "WHERE revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?) ORDER BY username",
        (now_ms,),
    ).fetchall()
    return [BrokerUser(str(u), str(h), str(r), d, int(a), None if e is None else int(e)) for u, h, r, d, a, e in rows]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- the hub's own accounts ---------------------------------------------------------------------------


def hub_usernames(workers: int) -> list[str]:
    """The hub accounts of a hub with `workers` worker processes: pingjia-hub, pingjia-hub-1..n when
    there is more than one (hub.workers names each worker's client id so), and pingjia-hub-control."""
    if workers < 1:
        raise ValueError(f"a hub has at least one worker, not {workers}")
    workers_names = [f"{HUB_NAME}-{n}" for n in range(1, workers + 1)] if workers > 1 else []
    # `pingjia hub command` and `hub configure` publish through an account of their own, so that
    # they never take over a serving worker's connection.
    return [HUB_NAME, *workers_names, f"{HUB_NAME}-control"]


def load_hub_secret(path: Path | str) -> dict[str, str]:
    """{username: password} of the hub accounts, as `ensure_hub_secret` wrote them. ValueError naming the
    file (never its content) if it cannot be read or is not such a JSON object."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"hub secret {path}: cannot read it ({type(exc).__name__})") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in document.items()
    ):
        raise ValueError(f"hub secret {path} is not a JSON object of usernames to passwords")
    return document


def ensure_hub_secret(path: Path, usernames: Iterable[str], *, renew: Iterable[str] = ()) -> dict[str, str]:
    """The hub accounts' passwords, kept in `path` (JSON, 0600): those already there are kept, a new one
    is made for each missing username and each in `renew`. The file is rewritten (atomically) only
    when something changed; it is written before any hash goes to the database, so no password whose
    hash is stored is ever lost."""
    passwords = load_hub_secret(path) if path.exists() else {}
    before = dict(passwords)
    for name in [*usernames, *renew]:
        if name not in passwords or name in renew:
            passwords[name] = new_password()
    if passwords != before:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(passwords, indent=2, sort_keys=True) + "\n", 0o600)
    return passwords


def _store_hub_accounts(db: Database, passwords: Mapping[str, str]) -> int:
    """Store the hash of each hub password whose account does not already check it; how many were."""
    changed = 0
    for name, password in passwords.items():
        row = db.execute("SELECT pw_hash, revoked_ms FROM broker_users WHERE username = ?", (name,)).fetchone()
        if row is None or row[1] is not None or not verify_password(password, row[0]):
            add_broker_user(db, name, hash_password(password), role="hub")
            changed += 1
    return changed


def _revoked(reader: Reader, usernames: Sequence[str]) -> list[str]:
    rows = reader.execute("SELECT username FROM broker_users WHERE revoked_ms IS NOT NULL").fetchall()
    return sorted({str(row[0]) for row in rows} & set(usernames))


# -- TLS ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path  # the site's CA certificate: what terminals and the hub verify the broker with (tls_ca)
    cert: Path  # the broker's certificate, signed by the CA
    key: Path  # the broker's private key (0600)


_CA_YEARS = 20
_SERVER_YEARS = 10  # terminals at counters run unattended for years: an expired certificate stops them all
_RENEW_BEFORE = dt.timedelta(days=365)
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")


def make_tls(directory: Path, hostnames: Sequence[str], *, now: dt.datetime | None = None) -> TlsFiles:
    """The site's CA and the broker's certificate for `hostnames` (DNS names or IP addresses), in
    `directory`: ca.crt, ca.key, server.crt, server.key (keys 0600); EC P-256 keys and ECDSA-SHA256,
    which Mosquitto 2.0 (OpenSSL), Python and small TLS stacks alike accept.

    An existing CA is kept (terminals hold its certificate). The broker's certificate is kept while
    it names the same hosts, verifies against that CA and has more than a year left; else it is made
    anew. ValueError for no hostnames, or one that is neither a DNS name nor an IP address.
    """
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = _san_names(x509, hostnames)
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(ca=directory / "ca.crt", cert=directory / "server.crt", key=directory / "server.key")
    ca_key_path = directory / "ca.key"
    pem = serialization.Encoding.PEM

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    def usage(*, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    if files.ca.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_path} is not an EC private key")
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pingjia site CA {secrets.token_hex(4)}")])
        ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(ca=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_atomic(ca_key_path, key_pem(ca_key), 0o600)
        _write_atomic(files.ca, ca_cert.public_bytes(pem), 0o644)

    if files.cert.exists() and files.key.exists():
        current = x509.load_pem_x509_certificate(files.cert.read_bytes())
        try:
            current.verify_directly_issued_by(ca_cert)
            san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (InvalidSignature, ValueError, TypeError, x509.ExtensionNotFound):
            pass  # not this CA's, or not one of ours: made anew below
        else:
            if set(san) == set(names) and current.not_valid_after_utc - _RENEW_BEFORE > now:
                return files

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365 * _SERVER_YEARS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_atomic(files.key, key_pem(key), 0o600)
    _write_atomic(files.cert, cert.public_bytes(pem), 0o644)
    return files


def _san_names(x509: Any, hostnames: Sequence[str]) -> list[Any]:
    if not hostnames:
        raise ValueError("a TLS certificate needs at least one hostname (--hostname)")
    return [
        x509.IPAddress(ip) if (ip := _check_hostname(host)) is not None else x509.DNSName(host) for host in hostnames
    ]


def _check_hostname(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` is, None for a DNS name; ValueError for neither."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        if len(host) > 253 or not _DNS_NAME.fullmatch(host):
            raise ValueError(f"hostname {host!r} is neither a DNS name nor an IP address") from None
        return None


# -- the site's files ---------------------------------------------------------------------------------


def render_site(
    users: Iterable[BrokerUser],
    *,
    directory: Path,
    port: int,
    bind: str = "127.0.0.1",
    persistence_dir: Path,
    tls: TlsFiles | None = None,
    tls_port: int = 8883,
    tls_bind: str | None = None,
    run_as: str | None = None,
) -> dict[str, str]:
    """The text of the site's `mosquitto.conf`, `passwd` and `acl`, for `users` (the active accounts),
    the files living in `directory`.

    Listeners: plain MQTT on `bind`:`port` (loopback by default: the hub on the broker's machine), and
    with `tls` MQTT over TLS on `tls_port` (all interfaces unless `tls_bind`: the hall's terminals).
    `run_as`: the user Mosquitto drops to when started as root (it reads every file as that user).
    ValueError for a port out of 1..65535, or a path or address Mosquitto's syntax cannot hold.
    """
    users = sorted(users, key=lambda user: user.username)
    directory = directory.resolve()
    paths = [directory, persistence_dir.resolve(), *((tls.ca, tls.cert, tls.key) if tls else ())]
    _check_settings(ports=(port, tls_port), values=[*map(str, paths), bind, tls_bind or "", run_as or ""])
    conf = [
        "# Written by `pingjia hub broker-config` from the hub database, with passwd and acl beside it;",
        "# it rewrites all three. `kill -HUP <mosquitto's pid>` (or --reload-pid) rereads passwd, acl and",
        "# the certificates, and disconnects clients whose account is gone. Mosquitto 2.x.",
        "",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {directory / 'passwd'}",
        f"acl_file {directory / 'acl'}",
        "# Where `pingjia tech` finds the broker to reload after pairing a terminal (refresh_accounts).",
        f"pid_file {directory / 'mosquitto.pid'}",
        "",
        "# Each listener: the client id is the account's username, so that no account can take over",
        "# another's session (a terminal's username is its device id; each hub worker has its own).",
        f"listener {port} {bind}".rstrip(),
        "use_username_as_clientid true",
    ]
    if tls is not None:
        conf += [
            "",
            "# MQTT over TLS (mqtts://): terminals verify the broker against the site's CA (tls/ca.crt).",
            f"listener {tls_port} {tls_bind or ''}".rstrip(),
            "use_username_as_clientid true",
            f"cafile {tls.ca.resolve()}",
            f"certfile {tls.cert.resolve()}",
            f"keyfile {tls.key.resolve()}",
            "tls_version tlsv1.2",
        ]
    conf += ["", "# The tuning of hub/mosquitto.conf (the dev and test broker): see the comments there."]
    conf += [f"{name} {value}" for name, value in TUNING]
    conf += [
        f"persistence_location {persistence_dir.resolve()}/",
        "",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "# Who connected, and who was refused.",
        "connection_messages true",
    ]
    if run_as:
        conf.append(f"user {run_as}")
    passwd = "".join(f"{user.username}:{user.pw_hash}\n" for user in users)
    return {"mosquitto.conf": "\n".join(conf) + "\n", "passwd": passwd, "acl": _render_acl(users)}


def _check_settings(*, ports: Iterable[int], values: Iterable[str]) -> None:
    for number in ports:
        if not 1 <= number <= 65535:
            raise ValueError(f"port {number} is not in 1..65535")
    for text in values:
        if any(character.isspace() or character == "#" for character in text):
            raise ValueError(f"{text!r}: Mosquitto's configuration cannot hold spaces or '#' in a value")


def _render_acl(users: Sequence[BrokerUser]) -> str:
    v1 = PREFIX
    lines = [
        "# Written by `pingjia hub broker-config` (hub/brokerconf.py says what each role may do).",
        "# Terminals: the username is the device id. A pattern applies to every account, so each account",
        f"# that is not a terminal is denied {v1}/<its own name>/# below; a denial wins over any grant.",
        *(f"pattern write {v1}/%u/{channel}" for channel in _TERMINAL_PUBLISHES),
        *(f"pattern read {v1}/%u/{channel}" for channel in _TERMINAL_RECEIVES),
    ]
    for user in users:
        lines += ["", f"user {user.username}"]
        if user.role != "terminal":
            lines.append(f"topic deny {v1}/{user.username}/#")
        if user.role == "terminal":
            lines.append(f"topic read {HUB_STATUS_FILTER}")
        elif user.role == "hub":
            lines += [f"topic read {v1}/+/{channel}" for channel in _TERMINAL_PUBLISHES]
            lines += [f"topic write {v1}/+/{channel}" for channel in _TERMINAL_RECEIVES]
            lines += [
                f"topic readwrite pingjia/hub/{user.username}/status",
                f"topic read {HUB_STATUS_FILTER}",
                f"topic read {_CLAIM}/+/request",
                f"topic write {_CLAIM}/+/reply",
            ]
        elif user.role == "claim":
            lines += [f"topic write {_CLAIM}/{user.username}/request", f"topic read {_CLAIM}/{user.username}/reply"]
        elif user.role == "tech":
            lines += [f"topic read {v1}/+/{channel}" for channel in ("status", "health", "event")]
            lines.append(f"topic read {HUB_STATUS_FILTER}")
    return "\n".join(lines) + "\n"


def write_site(
    directory: Path,
    users: Iterable[BrokerUser],
    *,
    port: int,
    bind: str = "127.0.0.1",
    persistence_dir: Path | None = None,
    tls: TlsFiles | None = None,
    tls_port: int = 8883,
    tls_bind: str | None = None,
    run_as: str | None = None,
) -> dict[str, Path]:
    """Write `render_site`'s files into `directory` (made if missing), each atomically: passwd and acl
    0600, mosquitto.conf 0644; the persistence folder (default `directory`/store) is made too. Run as
    root with `run_as`: the secrets Mosquitto reads (passwd, acl, the broker's TLS key) stay root's,
    readable by that user's group (0640), and the persistence folder becomes that user's.
    {name: path} of what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    persistence_dir = persistence_dir or directory / "store"
    texts = render_site(
        users,
        directory=directory,
        port=port,
        bind=bind,
        persistence_dir=persistence_dir,
        tls=tls,
        tls_port=tls_port,
        tls_bind=tls_bind,
        run_as=run_as,
    )
    owner = _owner(run_as)
    persistence_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret_mode = 0o600
    if owner is not None:
        os.chown(persistence_dir, *owner)
        secret_mode = 0o640
        if tls is not None:
            os.chown(tls.key, -1, owner[1])
            os.chmod(tls.key, secret_mode)
    written = {}
    for name, text in texts.items():
        path = directory / name
        if name == "mosquitto.conf":
            _write_atomic(path, text, 0o644)
        else:
            _write_atomic(path, text, secret_mode, group=None if owner is None else owner[1])
        written[name] = path
    return written


def refresh_accounts(db_url: str, directory: Path, now_ms: int) -> int | None:
    """Rewrite the site's passwd and acl in `directory` from the hub database and have the running
    Mosquitto reread them (SIGHUP to the pid in its pid file); the pid signalled, or None if no
    broker of this site runs here. Run after pairing, unpairing or replacing a terminal, so that its
    account works (or stops working) at once. The files keep their mode and group."""
    from hub.queries import Reader

    with Reader.open(db_url) as reader:
        users = broker_users(reader, now_ms)
    ordered = sorted(users, key=lambda user: user.username)
    texts = {
        "passwd": "".join(f"{user.username}:{user.pw_hash}\n" for user in ordered),
        "acl": _render_acl(ordered),
    }
    for name, text in texts.items():
        path = directory / name
        try:
            info = path.stat()
        except FileNotFoundError:
            raise ValueError(f"{directory} holds no broker site (no {name}): run `pingjia hub broker-config`") from None
        _write_atomic(path, text, stat.S_IMODE(info.st_mode), group=info.st_gid if os.geteuid() == 0 else None)
    try:
        pid = int((directory / "mosquitto.pid").read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def _owner(run_as: str | None) -> tuple[int, int] | None:
    if not run_as or os.geteuid() != 0:
        return None  # not root: Mosquitto runs as whoever starts it, and so reads what they wrote
    import pwd

    try:
        entry = pwd.getpwnam(run_as)
    except KeyError:
        raise ValueError(f"there is no user {run_as!r} for Mosquitto to run as") from None
    return entry.pw_uid, entry.pw_gid


def _write_atomic(path: Path, data: str | bytes, mode: int, *, group: int | None = None) -> None:
    """Replace `path` with `data` in one step (a temporary file, fsync, rename): a reader, Mosquitto
    included, sees the old file or the new one, never a part; the file has `mode` from the start."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # whatever the umask took away
            if group is not None:
                os.fchown(handle.fileno(), -1, group)
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# -- `pingjia hub broker-config` ----------------------------------------------------------------------


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `broker-config` to the `pingjia hub` subcommands."""
    from hub.cli import _add_db

    parser = sub.add_parser(
        "broker-config",
        help="write the site's Mosquitto configuration (accounts, ACL, TLS) from the hub database",
    )
    _add_db(parser, what="the hub database (its broker accounts; created if it does not exist yet)")
    parser.add_argument("--out", required=True, type=Path, help="the site's folder: mosquitto.conf, passwd, acl, ...")
    parser.add_argument("--port", type=int, default=1883, help="plain MQTT listener (default 1883)")
    parser.add_argument("--bind", default="127.0.0.1", help="its address (default 127.0.0.1: this machine only)")
    parser.add_argument("--hub-workers", type=int, default=1, help="hub worker processes, each with its own account")
    parser.add_argument("--tls", action="store_true", help="add an MQTT-over-TLS listener, with the site's own CA")
    parser.add_argument("--hostname", action="append", default=[], help="a name or address terminals reach it by")
    parser.add_argument("--tls-port", type=int, default=8883, help="the TLS listener (default 8883)")
    parser.add_argument("--tls-bind", help="its address (default: every interface)")
    parser.add_argument("--persistence-dir", type=Path, help="Mosquitto's store (default OUT/store)")
    parser.add_argument("--run-as", help="the user Mosquitto drops to when started as root (owns what it reads)")
    parser.add_argument("--reload-pid", type=int, help="then send SIGHUP to this Mosquitto: it rereads passwd and acl")
    parser.set_defaults(func=_broker_config)


def _broker_config(args: argparse.Namespace) -> int:
    from hub.queries import Reader
    from hub.writer import Writer

    try:
        if args.hostname and not args.tls:
            raise ValueError("--hostname names the TLS certificate's hosts: it needs --tls")
        if args.tls and not args.hostname:
            raise ValueError("--tls needs at least one --hostname that terminals reach the broker by")
        out: Path = args.out
        names = hub_usernames(args.hub_workers)
        # Everything is checked before anything is written: listeners, paths, the user, hostnames.
        paths = [out.resolve(), (args.persistence_dir or out).resolve()]
        _check_settings(
            ports=(args.port, args.tls_port),
            values=[*map(str, paths), args.bind, args.tls_bind or "", args.run_as or ""],
        )
        _owner(args.run_as)
        for host in args.hostname:
            _check_hostname(host)
        with Writer.open(args.db) as writer:
            with Reader.open(args.db) as reader:
                revoked = _revoked(reader, names)  # a revoked hub account gets a new password
            passwords = ensure_hub_secret(out / "hub.secret", names, renew=revoked)
            writer.write(_store_hub_accounts, {name: passwords[name] for name in names})
        tls = make_tls(out / "tls", args.hostname) if args.tls else None
        with Reader.open(args.db) as reader:
            users = broker_users(reader, _now_ms())
        written = write_site(
            out,
            users,
            port=args.port,
            bind=args.bind,
            persistence_dir=args.persistence_dir,
            tls=tls,
            tls_port=args.tls_port,
            tls_bind=args.tls_bind,
            run_as=args.run_as,
        )
        if args.reload_pid is not None:
            try:
                os.kill(args.reload_pid, signal.SIGHUP)
            except ProcessLookupError:
                raise ValueError(f"--reload-pid {args.reload_pid}: no such process (the files are written)") from None
    except (HubError, ValueError, OSError) as exc:
        sys.stderr.write(f"pingjia hub broker-config: {exc}\n")
        return 2
    summary = {
        "files": {name: str(path) for name, path in written.items()} | {"hub.secret": str(out / "hub.secret")},
        "ca": None if tls is None else str(tls.ca),
        "listeners": [f"mqtt://{args.bind}:{args.port}"]
        + ([f"mqtts://{args.tls_bind or '0.0.0.0'}:{args.tls_port}"] if tls else []),  # noqa: S104 - shown, not bound
        "accounts": dict(sorted(Counter(user.role for user in users).items())),
        "hub_accounts": names,
        "reloaded": args.reload_pid,
    }
    if os.geteuid() == 0 and not args.run_as:
        summary["note"] = (
            "started as root, Mosquitto drops to the user mosquitto, who cannot read these 0600 files: "
            "write them with --run-as mosquitto (or run Mosquitto as their owner)"
        )
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0
