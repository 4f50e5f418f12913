"""The runner's journal (journal.py) on a real state database: when queued changes are written."""

from __future__ import annotations

import sqlite3
import time

import pytest

from cluster_local.journal import GROUP_COMMIT, MAX_GROUP, Journal


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path)
    j.open()
    j.db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    yield j
    j.close()


def rows(journal):
    return journal.db.execute("SELECT id, v FROM t ORDER BY id").fetchall()


def test_changes_wait_for_others_only_while_there_is_a_backlog(journal):
    assert journal.due(backlog=True) is None  # nothing to write
    before = time.monotonic()
    journal.write("INSERT INTO t (id, v) VALUES (?, ?)", (1, "a"))
    time.sleep(0.005)  # a later change does not move the time the first one is written by
    journal.write("INSERT INTO t (id, v) VALUES (?, ?)", (2, "b"))
    due = journal.due(backlog=True)
    assert before + GROUP_COMMIT <= due < time.monotonic() + GROUP_COMMIT - 0.004
    assert journal.due(backlog=False) == 0.0  # no jobs waiting: written at once
    journal.flush()
    assert [tuple(r) for r in rows(journal)] == [(1, "a"), (2, "b")]  # in one transaction
    assert journal.due(backlog=True) is None


def test_many_changes_a_failure_or_changes_queued_by_hand_are_written_at_once(journal):
    for i in range(MAX_GROUP):
        journal.write("INSERT INTO t (id, v) VALUES (?, ?)", (i, "x"))
    assert journal.due(backlog=True) == 0.0
    journal.flush()
    journal.updates.append(("INSERT INTO t (id, v) VALUES (?, ?)", (MAX_GROUP, "y"), None))  # as recovery does
    assert journal.due(backlog=True) <= time.monotonic()
    journal.flush()
    journal.write("INSERT INTO t (id, v) VALUES (?, ?)", (0, "duplicate"))
    with pytest.raises(sqlite3.IntegrityError):
        journal.flush()
    journal.pause_after(sqlite3.IntegrityError("duplicate"))
    assert journal.due(backlog=True) == journal.retry_at > time.monotonic()  # tried again after the pause
