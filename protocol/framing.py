"""Byte framing for serial links: CRC-16/CCITT-FALSE and COBS (pure functions).

Used by the key panel's protocol (protocol/panel.py, spec in protocol/PANEL.md): a frame is
`COBS(payload + crc16) + 0x00`, so that a receiver can find frame boundaries in any byte stream.
"""

from __future__ import annotations

import binascii
from typing import Final

__all__ = ["CRC_CHECK", "cobs_decode", "cobs_encode", "crc16"]

CRC_CHECK: Final = 0x29B1  # crc16(b"123456789"), the catalogue's check value for CRC-16/CCITT-FALSE


# -- CRC-16/CCITT-FALSE ----------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, no final xor.

    The standard library's `binascii.crc_hqx` is this CRC given the init value, done in C.
    """
    return binascii.crc_hqx(data, 0xFFFF)


# -- COBS ------------------------------------------------------------------------------------------


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the same bytes with no 0x00 in them (delimiter not added).

    The output is a chain of blocks, each a code byte n (1..255) followed by n-1 non-zero bytes. A
    block with n < 255 stands for its bytes followed by a 0x00, except the last block, whose 0x00 is
    the one implied at the end of every input; a block with n = 255 is 254 bytes and no 0x00.
    """
    out = bytearray()
    block = bytearray()
    open_block = True  # False right after a full 254-byte block: the input may end there
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            open_block = True
            continue
        block.append(byte)
        open_block = True
        if len(block) == 0xFE:
            out.append(0xFF)
            out += block
            block.clear()
            open_block = False
    if open_block:
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Undo `cobs_encode`; ValueError if the bytes are not a COBS encoding (a 0x00, or a block
    running past the end)."""
    out = bytearray()
    at = 0
    while at < len(data):
        code = data[at]
        end = at + code
        if code == 0:
            raise ValueError(f"0x00 code byte at offset {at}")
        if end > len(data):
            raise ValueError(f"block at offset {at} needs {code - 1} bytes, {len(data) - at - 1} left")
        block = data[at + 1 : end]
        if 0 in block:
            raise ValueError(f"0x00 inside the block at offset {at}")
        out += block
        at = end
        if code != 0xFF and at < len(data):
            out.append(0)
    return bytes(out)
