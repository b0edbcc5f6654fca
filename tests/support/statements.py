"""The SQL statements one piece of test code causes, and only those.

The app runs background loops (the reconciler, the expiry watcher, the webhook sender)
on the same engines as the requests a test sends, so a listener that records every
statement also records theirs whenever one happens to wake. Statements are told apart
by context: ``Database.read``/``write`` run their work in a copy of the caller's
``contextvars`` context, so a request made while ``recording`` is open (its handler runs
in the test's context, through httpx's ASGI transport) carries the marker into the
database thread, while the loops, started before, never see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from keyops.storage.db import Database

_RECORDING: ContextVar[list[str] | None] = ContextVar("keyops_test_statements", default=None)


def engines_of(db: Database) -> list[Engine]:
    """The app's engines (SQLite reads have an engine of their own), each once."""
    return list({id(e): e for e in (db.engine, db.read_engine)}.values())


def _before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    seen = _RECORDING.get()
    if seen is not None:
        seen.append(statement)


@contextmanager
def listening(db: Database) -> Iterator[None]:
    """Let ``recording`` see the statements of ``db``'s engines while this is open."""
    engines = engines_of(db)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", _before)
    try:
        yield
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", _before)


@contextmanager
def recording() -> Iterator[list[str]]:
    """The statements sent on behalf of the code run inside this block (and of any
    task it starts), in order; none of a background loop's."""
    seen: list[str] = []
    token = _RECORDING.set(seen)
    try:
        yield seen
    finally:
        _RECORDING.reset(token)


@contextmanager
def statements_of(db: Database) -> Iterator[list[str]]:
    """``listening`` and ``recording`` in one block."""
    with listening(db), recording() as seen:
        yield seen
