"""The causal context every bus event carries: its id, the event that caused it, who acted.

An operator follows an action back to the reading behind it through these: a device reading
(a change in the log) → the rule that fired → the alert → the incident. The context travels in
message headers, so a consumer can read it without decoding the body.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

CONTEXT_ID: Final = "Smartcity-Context-Id"
CONTEXT_PARENT: Final = "Smartcity-Context-Parent"
CONTEXT_ACTOR: Final = "Smartcity-Context-Actor"


@dataclass(frozen=True, slots=True)
class Context:
    """Where one event sits in a causal chain."""

    id: str
    parent_id: str | None = None
    actor: str = ""
    """Who or what acted: a principal's subject, `system`, a rule (`rule:<id>`)."""

    @classmethod
    def new(cls, actor: str, parent: Context | None = None) -> Context:
        """Return a fresh context caused by `parent` (if any)."""
        return cls(uuid.uuid4().hex, parent.id if parent else None, actor)

    def child(self, context_id: str, actor: str) -> Context:
        """Return the context of an event this one caused, with a chosen (stable) id."""
        return Context(context_id, self.id, actor)

    def headers(self) -> dict[str, str]:
        """Return the message headers that carry this context."""
        headers = {CONTEXT_ID: self.id, CONTEXT_ACTOR: self.actor}
        if self.parent_id:
            headers[CONTEXT_PARENT] = self.parent_id
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Context | None:
        """Return the context message headers carry, or None without one."""
        context_id = headers.get(CONTEXT_ID)
        if not context_id:
            return None
        return cls(context_id, headers.get(CONTEXT_PARENT) or None, headers.get(CONTEXT_ACTOR, ""))
