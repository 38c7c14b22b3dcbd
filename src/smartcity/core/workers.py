"""Background workers: long-running loops the platform starts with the server and stops with it."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Worker(Protocol):
    """A loop that runs until `stop` is set (notification delivery, history writing, ...)."""

    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; return promptly after it is."""
        ...
