"""docs/development.md describes every module of the core, the Python package and the sensor,
so that a newcomer finds where a thing lives: a module added without a word there fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "development.md"


def items(text: str) -> list[str]:
    """The guide's list items, each with its continuation lines."""
    return re.split(r"\n\s*- ", text)


def modules() -> list[tuple[str, str]]:
    """Each module as (its folder, as the guide names it, or ""; its path inside that folder)."""
    found = []
    for path in sorted((ROOT / "src").rglob("*.rs")):
        parts = path.relative_to(ROOT / "src").parts
        # Test code is described with the module it tests.
        if "tests" in parts[:-1] or parts[-1] in ("tests.rs", "lib.rs"):
            continue
        found.append(("" if len(parts) == 1 else f"{parts[0]}/", "/".join(parts[1:] or parts)))
    for package in ("python/cull_idle", "sensor/cull_idle_sensor"):
        for path in sorted((ROOT / package).glob("*.py")):
            if path.name != "__init__.py":
                found.append((f"{package}/", path.name))
    return found


def test_every_module_is_described_in_the_development_guide() -> None:
    listed = items(GUIDE.read_text(encoding="utf-8"))
    missing = [
        folder + name
        for folder, name in modules()
        if not any(
            f"`{folder}{name}`" in item or (f"`{name}`" in item and (not folder or f"`{folder}`" in item))
            for item in listed
        )
    ]
    assert not missing, f"docs/development.md does not describe {missing}"
