"""Commits of other processes, heard through PostgreSQL's LISTEN/NOTIFY.

A store's commit listeners (the change relay, the notifier, the change feeds; the incident
streams and the incident facts publisher) wake at once on the commits of their own process, and
poll for everything else. On PostgreSQL several processes share one database: HTTP workers take
the writes while `smartcity workers` relays them, so a change written by another process would
wait up to a poll interval (0.5 s for the relay) before any worker looked. Every transaction that
logs changes or writes incidents therefore notifies `COMMIT_CHANNEL` with what it wrote and its
schema (`payload`, sent by `PostgresEntityStore.lock_and_notify` with the lock the change log
and the incident store take anyway: no extra round trip; PostgreSQL delivers
the notification at commit, never on rollback, and folds a transaction's equal notifications
into one), and one thread per store listens on a connection of its own and wakes the listeners
when a commit of another process (another backend than the store's own connections) arrives.

The polling stays as it was: a notification lost while the listening connection was down (it
reconnects, and wakes every listener once when it is back) is found by the next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

import psycopg
import structlog

COMMIT_CHANNEL: Final = "smartcity_changes"
"""The channel a transaction that wrote notifies, with what it wrote and where (`payload`)."""

log = structlog.get_logger(__name__)


def payload(topic: str, schema: str | None) -> str:
    """Return the notification of a commit of `topic` ("entities", "incidents") in a schema."""
    return f"{topic}\t{schema or ''}"


class CommitNotifications:
    """A thread that hears other processes' commits and calls the wakes listening for them.

    It starts with the first `listen`; `own_backends` are the backend process ids of the
    store's own connections, whose commits woke their listeners already.
    """

    def __init__(
        self, url: str, own_backends: set[int], *, where: str, retry_seconds: float = 2.0
    ) -> None:
        self.url = url
        self.own_backends = own_backends
        self.where = where
        """The server, for messages (the URL without its password)."""
        self.retry_seconds = retry_seconds
        self.heard = 0
        """Notifications of other processes' commits that woke listeners."""
        self.listening = threading.Event()
        """Set while the listening connection is up (tests wait on it)."""
        self._wakes: dict[str, list[Callable[[], None]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def listen(self, notice: str, wake: Callable[[], None]) -> None:
        """Call `wake` when another process commits with this notice (`payload`)."""
        with self._lock:
            self._wakes.setdefault(notice, []).append(wake)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="smartcity-commit-notifications", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop listening (within about half a second)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)

    def _wake(self, notice: str | None) -> None:
        with self._lock:
            wakes = [
                wake
                for key, listed in self._wakes.items()
                if notice is None or key == notice
                for wake in listed
            ]
        for wake in wakes:
            try:
                wake()
            except Exception:  # one listener's fault must not deafen the others
                log.exception("a commit listener failed", server=self.where)

    def _run(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as connection:
                    connection.execute(f"LISTEN {COMMIT_CHANNEL}")
                    self.listening.set()
                    if lost:  # commits may have come while deaf: every listener looks
                        log.info("commit notifications heard again", server=self.where)
                        self._wake(None)
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
        own = self.own_backends
        while not self._stop.is_set():
            for notice in connection.notifies(timeout=0.5):
                if notice.pid not in own:
                    self.heard += 1
                    self._wake(notice.payload)
