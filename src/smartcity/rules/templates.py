"""Render the templates in rule actions: ``{{ values.avg_speed | round(1) }}``, safely.

A template may only look values up by dotted names in what the firing offers (``rule``, ``key``,
``at``, ``kind``, ``values``, ``entity``, ``targets``) and pass them through a few filters; it
cannot call anything else, so a rule author cannot run code. A string that is one whole
``{{ ... }}`` keeps the value's own type (a number stays a number, a list a list).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

_PLACE: Final = re.compile(r"\{\{\s*((?:(?!\{\{|\}\}).)*?)\s*\}\}")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_FILTER: Final = re.compile(r"([a-z_]+)(?:\((.*)\))?")
MISSING: Final = object()


def _round(value: Any, digits: str = "0") -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        places = int(digits or 0)
        return round(value, places) if places else round(value)
    return value


def _percent(value: Any, digits: str = "0") -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * 100:.{int(digits or 0)}f}%"
    return value


def _default(value: Any, fallback: str = "") -> Any:
    return fallback.strip("'\"") if value is MISSING or value is None else value


FILTERS: Final[dict[str, Callable[..., Any]]] = {
    "round": _round,
    "percent": _percent,
    "default": _default,
    "upper": lambda value: str(value).upper(),
    "lower": lambda value: str(value).lower(),
    "json": lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True),
    "join": lambda value, sep="', '": (
        sep.strip("'\"").join(str(v) for v in value) if isinstance(value, list) else value
    ),
    "count": lambda value: len(value) if isinstance(value, list | dict | str) else 0,
}


class TemplateError(ValueError):
    """A template that names something unknown or is written wrongly."""


def check_template(text: str) -> str | None:
    """Return what is wrong with a template string, None if it is fine."""
    for expression in _PLACE.findall(text):
        problem = _check_expression(expression)
        if problem:
            return problem
    return None


def _check_expression(expression: str) -> str | None:
    name, *filters = [part.strip() for part in expression.split("|")]
    if not _NAME.fullmatch(name):
        return f"{{{{ {expression} }}}}: a template names a value, e.g. {{{{ values.avg_speed }}}}"
    if name.split(".")[0] not in ("rule", "key", "at", "kind", "values", "entity", "targets"):
        return (
            f"{{{{ {expression} }}}}: {name.split('.')[0]!r} is not offered; use rule, key, at, "
            "kind, values, entity or targets"
        )
    for item in filters:
        match = _FILTER.fullmatch(item)
        if match is None or match.group(1) not in FILTERS:
            return f"{{{{ {expression} }}}}: unknown filter {item!r}; known: {', '.join(FILTERS)}"
    return None


def _lookup(name: str, scope: Mapping[str, Any]) -> Any:
    value: Any = scope
    for part in name.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    name, *filters = [part.strip() for part in expression.split("|")]
    value = _lookup(name, scope)
    for item in filters:
        match = _FILTER.fullmatch(item)
        if match is None or match.group(1) not in FILTERS:
            raise TemplateError(f"unknown filter {item!r}")
        args = [match.group(2).strip()] if match.group(2) else []
        # A filter that does not fit the value leaves it as it is.
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            value = FILTERS[match.group(1)](value, *args)
    return value


def render(template: Any, scope: Mapping[str, Any]) -> Any:
    """Return a template (a string, or lists and mappings of them) rendered in a scope."""
    if isinstance(template, str):
        whole = _PLACE.fullmatch(template.strip())
        if whole is not None:
            value = _evaluate(whole.group(1), scope)
            return None if value is MISSING else value

        def one(match: re.Match[str]) -> str:
            value = _evaluate(match.group(1), scope)
            if value is MISSING or value is None:
                return ""
            if isinstance(value, float):
                return f"{value:g}"
            return str(value)

        return _PLACE.sub(one, template)
    if isinstance(template, list):
        return [render(item, scope) for item in template]
    if isinstance(template, Mapping):
        return {str(key): render(value, scope) for key, value in template.items()}
    return template


def check_templates(template: Any) -> list[str]:
    """Return the problems of every template string in a structure."""
    if isinstance(template, str):
        problem = check_template(template)
        return [problem] if problem else []
    if isinstance(template, list):
        return [p for item in template for p in check_templates(item)]
    if isinstance(template, Mapping):
        return [p for value in template.values() for p in check_templates(value)]
    return []
