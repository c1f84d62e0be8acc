"""Refresh the generated blocks of README.md: `python -m pingjia.readme`.

Blocks sit between `<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->` (the same
markers protocol/README.md uses, rewritten by the same `protocol.spec.refresh`); a test checks that
the README holds exactly what this would write.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from device.config import DeviceConfig
from device.flow import diagram
from hub.config import HubConfig
from protocol import spec
from runtime.settings import markdown_table

__all__ = ["BLOCKS", "refresh"]

BLOCKS: dict[str, Callable[[], str]] = {
    "diagram": lambda: "```mermaid\n" + diagram() + "\n```",
    "device-settings": lambda: markdown_table(DeviceConfig),
    "hub-settings": lambda: markdown_table(HubConfig),
}


def refresh(text: str) -> str:
    return spec.refresh(text, BLOCKS)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("README.md")
    path.write_text(refresh(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
