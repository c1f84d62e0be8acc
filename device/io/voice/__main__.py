"""`python -m device.io.voice build [FOLDER]`: make the voice prompts with espeak-ng."""

from __future__ import annotations

import sys
from pathlib import Path

from device.io.voice import PROMPT_DIR, build


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "build" or len(argv) > 2:
        print("usage: python -m device.io.voice build [FOLDER]", file=sys.stderr)  # noqa: T201
        return 2
    folder = Path(argv[1]) if len(argv) == 2 else PROMPT_DIR
    try:
        made = build(folder)
    except (RuntimeError, OSError) as exc:
        print(f"voice prompts: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"voice prompts: {len(made)} made, the rest up to date, in {folder}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
