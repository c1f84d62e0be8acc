"""Refresh the generated blocks of README.md: `python -m simulator.readme`.

Blocks sit between `<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->`; tests check
that the README holds exactly what this would write.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from device.config import DeviceConfig, markdown_table
from device.flow import diagram
from hub.config import HubConfig

BLOCKS: dict[str, Callable[[], str]] = {
    "diagram": lambda: "```mermaid\n" + diagram() + "\n```",
    "device-settings": lambda: markdown_table(DeviceConfig),
    "hub-settings": lambda: markdown_table(HubConfig),
}


def refresh(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- BEGIN generated:{name} -->\n)(?:.*?\n)?(<!-- END generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no generated:{name} block")
        body = make()
        text = pattern.sub(lambda match: match[1] + body + "\n" + match[2], text)  # noqa: B023 - used at once
    return text


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("README.md")
    path.write_text(refresh(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
