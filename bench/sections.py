"""Sections of docs/benchmarks.md that one benchmark writes alone, between its own markers.

`python -m bench --only <name>` rewrites its section and leaves the rest of the file as it
was; a full run writes the whole file, then adds the sections one by one.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- ([\w-]+):start -->\n(.*?)\n<!-- \1:end -->", re.S)


def sections(document: str) -> dict[str, str]:
    """Return the marked sections of a document, by name, in order."""
    return {match.group(1): match.group(2) for match in _SECTION.finditer(document)}


def markers(name: str) -> tuple[str, str]:
    """Return the HTML comments that open and close the section `name`."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_section(document: str, name: str, body: str) -> str:
    """Return `document` with the section `name` holding `body` (appended if it has none)."""
    start, end = markers(name)
    text = f"{start}\n{body.strip()}\n{end}"
    if start in document and end in document.split(start, 1)[1]:
        before, rest = document.split(start, 1)
        after = rest.split(end, 1)[1]
        return before + text + after
    return document.rstrip() + "\n\n" + text + "\n"


def write_section(docs: Path, name: str, body: str) -> None:
    """Put the section `name` into the file `docs` (replacing the previous one, if any)."""
    current = docs.read_text() if docs.exists() else "# Benchmarks\n"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(replace_section(current, name, body))
