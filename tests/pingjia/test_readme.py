"""The README's generated blocks (the flow's diagram, the settings tables) hold what the code says."""

from __future__ import annotations

from pathlib import Path

from pingjia.readme import refresh


def test_the_readme_generated_blocks_are_current() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert refresh(readme) == readme, "run `python -m pingjia.readme`"
