"""Sealing a customer's contact number to the hub (pure computation, no files).

A terminal seals what only the hub may read (a customer's phone number for a call back) to the
hub's X25519 public key, which it pinned at pairing: an ephemeral X25519 key agreement, HKDF-SHA256
and ChaCha20-Poly1305, with the terminal's device id as associated data (a sealed contact moved to
another terminal's record does not open). The wire form is base64 of: ephemeral public key (32
bytes) || nonce (12) || ciphertext and tag.
"""

from __future__ import annotations

import base64
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.errors import DecodeError, Reason

__all__ = ["SealKey", "open_sealed", "seal"]

_INFO: Final = b"pingjia/v2/seal"


class SealKey:
    """The hub's X25519 private key (for opening); `public_hex` is what terminals pin."""

    __slots__ = ("_key", "public_hex")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self.public_hex = _raw_public(key.public_key()).hex()

    @classmethod
    def generate(cls) -> SealKey:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SealKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, X25519PrivateKey):
            raise DecodeError("the key file does not hold an X25519 private key", reason=Reason.BAD_FIELD)
        return cls(key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def exchange(self, peer: bytes) -> bytes:
        return self._key.exchange(X25519PublicKey.from_public_bytes(peer))


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _aead(shared: bytes, ephemeral: bytes, recipient: bytes) -> ChaCha20Poly1305:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO).derive(shared)
    return ChaCha20Poly1305(derived)


def seal(recipient_hex: str, plaintext: bytes, associated: bytes) -> str:
    """`plaintext` sealed to the X25519 public key `recipient_hex` (64 hex digits), as base64 text."""
    try:
        recipient = bytes.fromhex(recipient_hex)
        public = X25519PublicKey.from_public_bytes(recipient)
    except ValueError as exc:
        raise DecodeError(f"not an X25519 public key: {exc}", reason=Reason.BAD_FIELD) from exc
    ephemeral_key = X25519PrivateKey.generate()
    ephemeral = _raw_public(ephemeral_key.public_key())
    nonce = os.urandom(12)
    sealed = _aead(ephemeral_key.exchange(public), ephemeral, recipient).encrypt(nonce, plaintext, associated)
    return base64.b64encode(ephemeral + nonce + sealed).decode("ascii")


def open_sealed(key: SealKey, text: str, associated: bytes) -> bytes:
    """The plaintext of `seal`'s output; DecodeError(bad_field) if it is not one sealed to `key`."""
    try:
        # Either alphabet: the record's `contact` field takes standard and URL-safe base64 alike.
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError as exc:
        raise DecodeError("sealed text is not base64", reason=Reason.BAD_FIELD) from exc
    if len(raw) < 32 + 12 + 16:
        raise DecodeError("sealed text is too short", reason=Reason.BAD_FIELD)
    ephemeral, nonce, sealed = raw[:32], raw[32:44], raw[44:]
    try:
        shared = key.exchange(ephemeral)
        return _aead(shared, ephemeral, bytes.fromhex(key.public_hex)).decrypt(nonce, sealed, associated)
    except (InvalidTag, ValueError) as exc:
        raise DecodeError("sealed text does not open with this hub's key", reason=Reason.BAD_FIELD) from exc
