"""The touchscreen's font: Noto Sans CJK (Debian's fonts-noto-cjk), found once at start.

Chinese labels need a CJK font, and the simplified-Chinese face of the collection (SC), not the
Japanese one a .ttc opens at by default: some characters are drawn differently. fontconfig
(`fc-match`) names the file and the face's index in it; without fontconfig the usual Debian paths
are tried. A terminal without the font stops at start with `FontMissing`, naming the package, before
it shows anything: boxes instead of characters are worse than no screen.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from device.errors import DeviceError

__all__ = ["FAMILY", "PACKAGE", "FontFile", "FontMissing", "find_cjk_font"]

FAMILY: Final = "Noto Sans CJK SC"
PACKAGE: Final = "fonts-noto-cjk"
# Where Debian and Ubuntu put the collection; face 2 is SC in Debian's NotoSansCJK-*.ttc.
_KNOWN: Final = (
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"), 0),
    (Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"), 2),
)


class FontMissing(DeviceError):
    """No CJK font: the message says which package to install."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the touchscreen needs the font {FAMILY} ({detail}); install it with: sudo apt-get install {PACKAGE}"
        )
        self.package = PACKAGE


@dataclass(frozen=True, slots=True)
class FontFile:
    path: Path
    index: int  # the face within a collection (.ttc)


def find_cjk_font(*, fc_match: str | None = "fc-match", known: tuple[tuple[Path, int], ...] = _KNOWN) -> FontFile:
    """The Noto Sans CJK SC face; FontMissing if neither fontconfig nor the known paths have it.

    `fc_match`: the fontconfig command (None: do not ask fontconfig); `known`: paths to try after.
    """
    command = shutil.which(fc_match) if fc_match else None
    if command is not None:
        try:
            found = subprocess.run(
                [command, "--format=%{family}|%{file}|%{index}", FAMILY],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            found = ""
        families, _, rest = found.partition("|")
        file, _, face = rest.partition("|")
        # fc-match always answers something: only the family asked for will do.
        if "Noto Sans CJK" in families and file and Path(file).is_file():
            return FontFile(Path(file), int(face) if face.isdigit() else 0)
    for path, index in known:
        if path.is_file():
            return FontFile(path, index)
    asked = "fontconfig does not know it" if command is not None else "fontconfig's fc-match is not installed"
    raise FontMissing(f"{asked}, and it is not at {', '.join(str(path) for path, _ in known)}")
