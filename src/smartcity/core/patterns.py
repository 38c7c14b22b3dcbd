"""Regular expressions that users send (q `~=`, idPattern): compiled once, run with a time limit.

Anyone who may read may send a pattern, so a pattern that backtracks for ever must not hold a
worker: every search stops after SEARCH_TIMEOUT seconds and the request fails with a 400.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Final, TypeAlias

import regex

from smartcity.core.errors import BadRequestData

SEARCH_TIMEOUT: Final = 0.05
Pattern: TypeAlias = regex.Pattern[str]


class PatternTooSlow(BadRequestData):
    """A regular expression ran longer than the broker allows on one value."""


@lru_cache(maxsize=512)
def _compile(text: str) -> Pattern | str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "possible nested set" and the like: refuse
            return regex.compile(text, flags=regex.VERSION0)
    except (regex.error, OverflowError, RecursionError, Warning) as error:
        return str(error)


def pattern_problem(text: str) -> str | None:
    """Return why a regular expression is invalid, or None when it compiles."""
    compiled = _compile(text)
    return compiled if isinstance(compiled, str) else None


def compile_pattern(text: str) -> Pattern:
    """Compile a user's regular expression (Python syntax); BadRequestData if it is invalid."""
    compiled = _compile(text)
    if isinstance(compiled, str):
        raise BadRequestData(f"invalid regular expression {text!r}: {compiled}")
    return compiled


def search(pattern: Pattern, text: str) -> bool:
    """Tell whether the pattern occurs in the text; PatternTooSlow past the time limit."""
    try:
        return pattern.search(text, timeout=SEARCH_TIMEOUT) is not None
    except TimeoutError:
        raise PatternTooSlow(
            f"the regular expression {pattern.pattern!r} took longer than "
            f"{SEARCH_TIMEOUT * 1000:.0f} ms on one value; simplify it (avoid nested repetition)"
        ) from None
