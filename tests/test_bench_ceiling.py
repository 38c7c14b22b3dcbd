"""The reading-ceiling benchmark: the store's statements are counted, then released."""

from __future__ import annotations

import sqlite3

from bench.reading_ceiling import CeilingSizes, measure, section


def test_every_statement_of_the_write_path_is_counted_and_the_patch_is_undone() -> None:
    original = sqlite3.connect
    result = measure("tiny", CeilingSizes(entities=20, rounds=2, batch=10))
    assert sqlite3.connect is original
    assert result.readings == 40
    statements = result.statements.calls
    # Two rounds of two batches: one history insert and one commit per batch_upsert.
    history = [sql for sql in statements if sql.startswith("INSERT INTO history_instances")]
    assert [statements[sql] for sql in history] == [4]
    assert statements["COMMIT"] >= 4
    assert 0 < result.statements.total < result.cpu_seconds
    text = section([result], CeilingSizes(entities=20, rounds=2, batch=10), "today")
    assert "| tiny | 40 |" in text
