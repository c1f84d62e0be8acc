"""Ed25519 keys and the domain-separated hashes of the protocol (pure computation, no files).

Domain separation: a record's chain hash is SHA-256(0x00 || canonical record) as for an RFC 6962
leaf; signatures are taken over a context string, a NUL byte, then the canonical bytes, so that a
signature made for one message type can never be replayed as another.

Signing and verifying run in libsodium (PyNaCl): about twice as fast as OpenSSL's Ed25519 through
`cryptography` here (verify 50 against 104 µs, sign 20 against 33), which matters now that every
ack is signed by the hub and verified by a terminal. Ed25519 signatures are deterministic, so both
make the same bytes. `cryptography` still reads and writes key files and checks that a public key
is a point on the curve.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

from protocol.errors import DecodeError, Reason

__all__ = [
    "GENESIS",
    "HEAD_CONTEXT",
    "RECORD_CONTEXT",
    "SigningKey",
    "VerifyKey",
    "leaf_hash",
]

RECORD_CONTEXT: Final = b"pingjia/v1/record\x00"
HEAD_CONTEXT: Final = b"pingjia/v1/head\x00"
LEAF_PREFIX: Final = b"\x00"
GENESIS: Final = "0" * 64  # `prev` of a device's first record


def leaf_hash(canonical_record: bytes) -> str:
    """Chain hash of a whole record (signature included), as 64 lowercase hex digits."""
    return hashlib.sha256(LEAF_PREFIX + canonical_record).hexdigest()


class VerifyKey:
    """A device's public key."""

    __slots__ = ("_raw", "hex")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 32:
            raise DecodeError(f"an Ed25519 public key is 32 bytes, got {len(raw)}", reason=Reason.BAD_FIELD)
        Ed25519PublicKey.from_public_bytes(raw)  # ValueError for bytes that are no key
        self._raw = raw
        self.hex = raw.hex()

    @classmethod
    def from_hex(cls, text: str) -> VerifyKey:
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise DecodeError("public key is not hex", reason=Reason.BAD_FIELD) from exc
        return cls(raw)

    def verify(self, signature: bytes, context: bytes, message: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            crypto_sign_open(signature + context + message, self._raw)
        except BadSignatureError:
            return False
        return True


class SigningKey:
    """A device's private key. It is created on the device and never leaves it."""

    __slots__ = ("_key", "_secret", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        seed = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public, self._secret = crypto_sign_seed_keypair(seed)
        self.public = VerifyKey(public)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise DecodeError("the key file does not hold an Ed25519 private key", reason=Reason.BAD_FIELD)
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, context: bytes, message: bytes) -> bytes:
        return crypto_sign(context + message, self._secret)[:64]
