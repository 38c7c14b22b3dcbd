"""Read rule sets from YAML with errors that say where (line, column, path) and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from smartcity.core.errors import InvalidRequest
from smartcity.rules.model import (
    Action,
    Filter,
    Join,
    KeyBy,
    Rule,
    RuleSet,
    Schedule,
    Target,
    Window,
)
from smartcity.rules.model import (
    Sequence as SequenceModel,
)

PathPart = str | int
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a rule set, where it is and how to fix it."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return (
            f"{self.source_prefix}{where if self.line else 'rule set'}: {self.path}: {self.message}"
        )

    @property
    def source_prefix(self) -> str:
        """Return nothing (the source is named once, in the error)."""
        return ""

    def as_dict(self) -> dict[str, Any]:
        """Return the problem as JSON-ready data."""
        return {
            "path": self.path,
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }


class RuleSetError(InvalidRequest):
    """A rule set that cannot be loaded: every problem found, with its line."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(
            f"{source}: {len(problems)} problem(s) in the rule set:\n{lines}",
            problems=[problem.as_dict() for problem in problems],
        )
        self.problems = list(problems)


class Locator:
    """Find the line of a path (``rules[2].when.q``) in the YAML text it was read from."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._root: yaml.Node | None = None
        self._composed = False

    @property
    def root(self) -> yaml.Node | None:
        """Return the YAML node tree (composed only when a problem needs a line)."""
        if not self._composed:
            self._root = yaml.compose(self.text, Loader=yaml.SafeLoader)
            self._composed = True
        return self._root

    def node(self, path: Iterable[PathPart], key: bool = False) -> yaml.Node | None:
        """Return the deepest node along a path (the last key itself, with `key`)."""
        node = self.root
        parts = list(path)
        for number, part in enumerate(parts):
            if isinstance(node, yaml.MappingNode):
                if key and number == len(parts) - 1:
                    found = next(
                        (k for k, _ in node.value if getattr(k, "value", None) == part), None
                    )
                    return found or node
                child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
                if child is None:
                    named = next(
                        (k for k, _ in node.value if getattr(k, "value", None) == part), None
                    )
                    return named or node
                node = child
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and 0 <= part < len(node.value)
            ):
                node = node.value[part]
            else:
                break
        return node

    def problem(self, path: Sequence[PathPart], message: str, key: bool = False) -> Problem:
        """Return a problem with the line and column of its path."""
        node = self.node(path, key)
        line = node.start_mark.line + 1 if node is not None else None
        column = node.start_mark.column + 1 if node is not None else None
        return Problem(render_path(path), message, line, column)


def render_path(path: Sequence[PathPart]) -> str:
    """Return a path as rule authors write it: ``rules[2].when.q``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


_MODELS: dict[str, type[Any]] = {
    "rules": Rule,
    "when": Filter,
    "condition": Filter,
    "first": Filter,
    "then": Filter,
    "require": Join,
    "schedule": Schedule,
    "window": Window,
    "sequence": SequenceModel,
    "actions": Action,
    "target": Target,
    "key": KeyBy,
}


def _fix(error: Any, path: tuple[PathPart, ...]) -> str:
    """Return pydantic's message with what to do about it."""
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden" and path:
        parent = next((p for p in reversed(path[:-1]) if isinstance(p, str)), "")
        model = _MODELS.get(parent, RuleSet if len(path) == 1 else Rule)
        allowed = sorted(f.alias or name for name, f in model.model_fields.items())
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key {path[-1]!r}: {hint}allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return f"add {path[-1]!r}: it is required here" if path else message
    return str(message).removeprefix("Value error, ")


def _clean(loc: tuple[PathPart, ...]) -> tuple[PathPart, ...]:
    """Drop pydantic's union branch names (``KeyBy``, ``literal['entity']``) from a path."""
    names = {"KeyBy", "Target", "function-before[_names(), list[str]]", "str", "dict[str,str]"}
    return tuple(
        p
        for p in loc
        if not (isinstance(p, str) and (p in names or p.startswith(("literal[", "function-"))))
    )


def parse_rule_set(text: str, source: str = "<rules>") -> tuple[RuleSet, Locator]:
    """Return the rule set a YAML text holds (not yet compiled) and its locator."""
    try:
        data = yaml.load(text, Loader=_FAST_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        problem = Problem(
            "(yaml)",
            f"not valid YAML: {error.problem}; check the indentation and quoting "
            "(quote a q condition that starts with a special character)",
            mark.line + 1 if mark else None,
            mark.column + 1 if mark else None,
        )
        raise RuleSetError(source, [problem]) from None
    locator = Locator(text)
    if data is None:
        data = {}
    if isinstance(data, list):
        data = {"rules": data}
    if not isinstance(data, dict):
        raise RuleSetError(
            source, [Problem("(top)", "a rule set is a mapping with a 'rules' list", 1, 1)]
        )
    try:
        return RuleSet.model_validate(data), locator
    except ValidationError as error:
        problems = []
        seen = set()
        for item in error.errors():
            path = _clean(tuple(item["loc"]))
            problem = locator.problem(path, _fix(item, path), item["type"] == "extra_forbidden")
            if (problem.path, problem.message) not in seen:
                seen.add((problem.path, problem.message))
                problems.append(problem)
        raise RuleSetError(source, problems) from None


def load_rule_set_text(text: str, source: str = "<rules>") -> RuleSet:
    """Return a rule set from YAML text, checked and compiled; raise RuleSetError otherwise."""
    from smartcity.rules.compile import check_rule_set

    rule_set, locator = parse_rule_set(text, source)
    problems = [locator.problem(path, message) for path, message in check_rule_set(rule_set)]
    if problems:
        raise RuleSetError(source, problems)
    return rule_set


def load_rule_set_file(path: Path) -> RuleSet:
    """Return the rule set of a YAML file."""
    return load_rule_set_text(path.read_text(encoding="utf-8"), str(path))


def merge_rule_sets(sets: Sequence[RuleSet]) -> RuleSet:
    """Return one rule set of several (zones and calendars shared; rule ids must not repeat)."""
    if not sets:
        return RuleSet()
    zones: dict[str, dict[str, Any]] = {}
    calendars: dict[str, Any] = {}
    rules: list[Rule] = []
    ids: set[str] = set()
    for rule_set in sets:
        zones.update(rule_set.zones)
        calendars.update(rule_set.calendars)
        for rule in rule_set.rules:
            if rule.id in ids:
                raise RuleSetError(
                    "<merge>", [Problem(f"rules.{rule.id}", "this rule id is used twice")]
                )
            ids.add(rule.id)
            rules.append(rule)
    first = sets[0]
    return RuleSet(
        timezone=first.timezone,
        location=first.location,
        lateness=first.lateness,
        zones=zones,
        calendars=calendars,
        rules=rules,
    )


def _builtin_texts() -> list[tuple[str, str]]:
    folder = resources.files("smartcity.rules") / "builtin"
    return [
        (f"builtin/{entry.name}", entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".yaml")
    ]


def builtin_rule_set() -> RuleSet:
    """Return the built-in rules for the district's services, shipped in the package."""
    return merge_rule_sets([load_rule_set_text(text, source) for source, text in _builtin_texts()])


def builtin_rule_documents() -> list[dict[str, Any]]:
    """Return each built-in rule as written in its file, to store it (zones stay shared)."""
    builtin_rule_set()  # refuses a broken file before anything is stored
    documents: list[dict[str, Any]] = []
    for _source, text in _builtin_texts():
        documents.extend(dict(rule) for rule in yaml.load(text, Loader=_FAST_LOADER)["rules"])
    return documents
