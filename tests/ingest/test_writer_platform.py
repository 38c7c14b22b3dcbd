"""The ingest writer as the platform runs it: a worker, with the real dead-letter service."""

from __future__ import annotations

import asyncio
from pathlib import Path

from smartcity.auth.principal import Caller
from smartcity.config import Settings
from smartcity.ingest.readings import subject_for
from smartcity.ingest.writer import IngestWriter
from smartcity.platform import Platform, build_platform
from smartcity.storage.deadletters import DeadLetterFilter
from tests.bus.conftest import eventually, run
from tests.ingest.conftest import make_reading

CONTEXT_URL = "https://context.example.org/changdong-air.jsonld"
CONTEXT = {"@context": {"pm10": "https://example.org/changdong/pm10"}}


def test_the_platform_runs_the_writer_only_when_ingestion_is_enabled(tmp_path: Path) -> None:
    enabled = build_platform(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    disabled = build_platform(
        Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", ingest_enabled=False)
    )
    try:
        assert any(isinstance(worker, IngestWriter) for worker in enabled.workers)
        assert not any(isinstance(worker, IngestWriter) for worker in disabled.workers)
        # Its dead letters can be replayed in either process.
        assert disabled.deadletters.replayer_for("writer") is not None
    finally:
        enabled.close()
        disabled.close()


def test_a_refused_reading_is_a_dead_letter_that_replays_once_the_cause_is_fixed(
    platform: Platform,
) -> None:
    refused = make_reading("ctx", 42, attribute="pm10", tenant="dobong", context=[CONTEXT_URL])
    stored = make_reading("fine", 7, tenant="dobong")
    admin = Caller.system("dobong")
    writer = next(worker for worker in platform.workers if isinstance(worker, IngestWriter))

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(platform.run_workers(stop))
        await platform.bus.publish(subject_for("dobong"), refused.to_bytes(), msg_id=refused.id)
        await platform.bus.publish(subject_for("dobong"), stored.to_bytes(), msg_id=stored.id)
        await eventually(lambda: writer.counts.stored + writer.counts.dead_letters == 2)
        (letter,) = platform.deadletters.page(admin, DeadLetterFilter()).letters
        assert (letter.source, letter.reason, letter.stage) == ("writer", "broker", "store")
        assert CONTEXT_URL in letter.message
        assert letter.payload == refused.to_bytes()

        # The operator makes the @context available, then replays the letter.
        platform.contexts.preload_document(CONTEXT_URL, CONTEXT)
        report = await platform.deadletters.replay(admin, ids=[letter.id])
        assert [outcome.outcome for outcome in report.outcomes] == ["replayed"]
        stop.set()
        await running
        await platform.stop()

    run(scenario())
    entity = platform.store.get("dobong", refused.entity_id)
    assert entity is not None
    assert entity.attrs["https://example.org/changdong/pm10"][0]["value"] == 42
    assert platform.store.get("dobong", stored.entity_id) is not None
