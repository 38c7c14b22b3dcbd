"""Subjects and subject filters, with the NATS rules every backend follows."""

from __future__ import annotations

from collections.abc import Sequence


def check_subject(subject: str) -> None:
    """Raise ValueError unless `subject` is a concrete subject (tokens, no wildcards)."""
    tokens = subject.split(".")
    if not subject or any(not token or token in ("*", ">") or " " in token for token in tokens):
        raise ValueError(
            f"invalid subject {subject!r}: dot-separated non-empty tokens without spaces "
            "or wildcards"
        )


def check_filter(pattern: str) -> None:
    """Raise ValueError unless `pattern` is a valid filter (`*` one token, `>` last only)."""
    tokens = pattern.split(".")
    if not pattern or any(not token or " " in token for token in tokens):
        raise ValueError(f"invalid subject filter {pattern!r}: empty token or space")
    for index, token in enumerate(tokens):
        if token == ">" and index != len(tokens) - 1:
            raise ValueError(f"invalid subject filter {pattern!r}: '>' must be the last token")
        if len(token) > 1 and ("*" in token or ">" in token):
            raise ValueError(f"invalid subject filter {pattern!r}: a wildcard is a whole token")


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether `subject` matches the filter `pattern` (`*` one token, `>` one or more)."""
    wanted = pattern.split(".")
    tokens = subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


def matches_any(patterns: Sequence[str], subject: str) -> bool:
    """Whether `subject` matches one of `patterns`."""
    return any(subject_matches(pattern, subject) for pattern in patterns)
