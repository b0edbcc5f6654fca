"""``Prepared``'s bulk parameters (``_Rendered.many``) are exactly what converting each row
alone (``_Rendered.args``) gives, on both dialects: same order, conversions, defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Integer, LargeBinary, MetaData, String, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from keyops.storage.models.base import UTCDateTime
from keyops.storage.prepared import _Rendered

_TABLE = Table(
    "t",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String(50)),
    Column("at", UTCDateTime()),
    Column("present", Boolean),
    Column("content", LargeBinary),
    Column("kind", String(10), default="plain"),
)

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.psycopg.dialect()}


def _rows() -> list[dict[str, Any]]:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    other = datetime(2026, 12, 3, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    # One shared timestamp object (as a change writes), then an equal but distinct one in
    # another zone, then back: the per-column reuse must not return a stale conversion.
    return [
        {"name": f"n{i}", "at": at, "present": i % 2 == 0, "content": bytes([i]) * 3}
        for i, at in enumerate([now, now, other, now, None])
    ]


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_many_matches_args_row_by_row(name: str) -> None:
    dialect: Dialect = DIALECTS[name]
    rows = _rows()
    rendered = _Rendered(insert(_TABLE), dialect, tuple(sorted(rows[0])))
    expected = [rendered.args(row)[1] for row in rows]
    assert rendered.many(rows) == expected
    # The column default of an unnamed column is filled, converted like the rest.
    first = expected[0]
    if isinstance(first, dict):
        assert first["kind"] == "plain"
    else:
        assert "plain" in first


def test_many_converts_each_distinct_value() -> None:
    dialect = DIALECTS["sqlite"]
    rows = _rows()
    rendered = _Rendered(insert(_TABLE), dialect, tuple(sorted(rows[0])))
    at = rendered.names.index("at")
    got = [row[at] for row in rendered.many(rows)]
    # SQLite stores naive UTC text: 14:00+02:00 is 12:00 UTC, None stays NULL.
    assert got[0] == got[1] == got[2] == got[3] and got[4] is None
