"""Every setting is documented: in the README's table or in a page of docs/."""

from __future__ import annotations

import re
from pathlib import Path

from smartcity.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def documented_names() -> tuple[str, list[re.Pattern[str]]]:
    text = (ROOT / "README.md").read_text() + "".join(
        page.read_text() for page in sorted((ROOT / "docs").glob("*.md"))
    )
    # A table may name a family of settings at once: `adapter_*_interval`.
    families = [
        re.compile(re.escape(name).replace(r"\*", r"[a-z0-9_]+") + "$")
        for name in re.findall(r"`([a-z0-9_]*\*[a-z0-9_*]*)`", text)
    ]
    return text, families


def test_every_setting_is_in_the_docs() -> None:
    text, families = documented_names()
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in text
        and f"SMARTCITY_{name.upper()}" not in text
        and not any(family.match(name) for family in families)
    ]
    assert missing == [], f"document these settings in README.md or docs/: {missing}"
