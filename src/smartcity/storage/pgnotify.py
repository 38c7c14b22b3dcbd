"""Commits of other processes, heard through PostgreSQL's LISTEN/NOTIFY.

A store's commit listeners (the change relay, the notifier, the change feeds, the temporal
writer) wake at once on the commits of their own process, and poll for everything else. On
PostgreSQL several processes share one database: HTTP workers take the writes while
`smartcity workers` relays them, so a change written by another process would wait up to a poll
interval (0.5 s for the relay) before any worker looked. Every transaction that logs changes
therefore notifies `COMMIT_CHANNEL` with its schema (`PostgresEntityStore._lock_change_log`:
in the statement it runs anyway, so no extra round trip; PostgreSQL delivers the notification at
commit, never on rollback, and folds a transaction's equal notifications into one), and one
thread per store listens on a connection of its own and wakes the store's listeners when a
commit of another process (another backend than the store's own connections) arrives.

The polling stays as it was: a notification lost while the listening connection was down (it
reconnects, and wakes the listeners once when it is back) is found by the next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

import psycopg
import structlog

COMMIT_CHANNEL: Final = "smartcity_changes"
"""The channel a transaction that logged changes notifies, with its store's schema."""

log = structlog.get_logger(__name__)


class CommitNotifications:
    """A thread that hears other processes' commits to one schema and calls `wake`."""

    def __init__(
        self,
        url: str,
        schema: str,
        own_backends: set[int],
        wake: Callable[[], None],
        *,
        where: str,
        retry_seconds: float = 2.0,
    ) -> None:
        self.url = url
        self.schema = schema
        self.own_backends = own_backends
        """The backend process ids of the store's own connections: their commits woke already."""
        self.wake = wake
        self.where = where
        """The server, for messages (the URL without its password)."""
        self.retry_seconds = retry_seconds
        self.heard = 0
        """Notifications of other processes' commits that woke the listeners."""
        self.listening = threading.Event()
        """Set while the listening connection is up (tests wait on it)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="smartcity-commit-notifications", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop listening (within about half a second)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as connection:
                    connection.execute(f"LISTEN {COMMIT_CHANNEL}")
                    self.listening.set()
                    if lost:  # commits may have come while deaf: let the listeners look
                        log.info("commit notifications heard again", server=self.where)
                        self.wake()
                        lost = False
                    self._listen(connection)
            except psycopg.Error as error:
                self.listening.clear()
                if not lost:
                    log.warning(
                        "cannot hear other processes' commits; polling meanwhile",
                        server=self.where,
                        error=str(error).strip(),
                    )
                lost = True
                self._stop.wait(self.retry_seconds)
        self.listening.clear()

    def _listen(self, connection: psycopg.Connection[Any]) -> None:
        schema, own = self.schema, self.own_backends
        while not self._stop.is_set():
            for notice in connection.notifies(timeout=0.5):
                if notice.payload == schema and notice.pid not in own:
                    self.heard += 1
                    self.wake()
