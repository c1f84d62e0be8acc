"""Every size limit of protocol v1 in one place (documented in protocol/README.md)."""

from __future__ import annotations

from typing import Final

VERSION: Final = 1

MAX_MESSAGE_BYTES: Final = 512 * 1024  # any MQTT payload on a pingjia topic
MAX_BATCH_RECORDS: Final = 500  # records per batch message
MAX_SEQ: Final = 2**63 - 1  # per-device sequence numbers are 1..MAX_SEQ
MAX_MS: Final = 2**53 - 1  # wall-clock and monotonic milliseconds (exact in every JSON reader)
MAX_SESSION: Final = 2**63 - 1

MAX_ID_CHARS: Final = 64  # device id, staff id
MAX_FW_CHARS: Final = 32
MAX_BOOT_CHARS: Final = 64
MAX_TICKET_CHARS: Final = 64
MAX_CONTACT_CHARS: Final = 1024  # sealed contact, base64 text
MAX_REASONS: Final = 5  # reason codes attached to one rating
MAX_REASON_CODE: Final = 99
MAX_DETAIL_CHARS: Final = 200  # text of a rejection in an ack
MAX_REJECTS: Final = MAX_BATCH_RECORDS  # rejection entries in one ack
