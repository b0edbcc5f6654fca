"""``keyops audit verify``: the hash chain, read straight from the database, on both
databases; edited, deleted, inserted and reordered rows are found; appends from two
"replicas" (two Database instances, their own pools) at once never fork the chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from keyops.cli.main import app
from keyops.domain import audit
from keyops.storage.db import Database
from keyops.storage.migrate import upgrade_to_head
from keyops.storage.repositories.audit import chain_rows
from tests.support.databases import BACKENDS, database

runner = CliRunner()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    with database(str(request.param), tmp_path) as u:
        upgrade_to_head(u)
        yield u


def _entry(i: int) -> dict[str, object]:
    return {
        "username": f"user-{i}",
        "token_id": i,
        "source_address": "127.0.0.1",
        "request_id": f"req-{i}",
        "operation": audit.Operation.UPDATE,
        "project": "p",
        "kind": "certificate",
        "name": f"cert-{i}",
        "environments": ["e1", "e2"],
        "before_sha256": "a" * 64,
        "after_sha256": "b" * 64,
        "outcome": audit.Outcome.SUCCESS,
        "detail": None,
    }


@pytest_asyncio.fixture
async def replicas(url: str) -> AsyncIterator[tuple[Database, Database]]:
    one, two = Database(url), Database(url)
    try:
        yield one, two
    finally:
        one.dispose()
        two.dispose()


async def _append(db: Database, i: int) -> None:
    def work(session: Session) -> None:
        audit.append(session, [_entry(i)])

    await db.write(work)


def verify(url: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", "--database-url", url])
    return result.exit_code, result.output


def sql(url: str, statement: str) -> None:
    db = Database(url)
    try:
        with db.transaction() as session:
            session.execute(text(statement))
    finally:
        db.dispose()


async def test_empty_chain_is_ok(url: str) -> None:
    assert verify(url) == (0, "ok, 0 entries\n")


async def test_two_replicas_at_once_keep_one_chain(
    url: str, replicas: tuple[Database, Database]
) -> None:
    one, two = replicas
    await asyncio.gather(*(_append(one if i % 2 else two, i) for i in range(40)))
    assert verify(url) == (0, "ok, 40 entries\n")
    db = Database(url)
    try:
        with db.transaction() as session:
            rows = session.execute(
                text("SELECT id, prev_hash, hash FROM audit_entries ORDER BY id")
            ).all()
    finally:
        db.dispose()
    assert [r[0] for r in rows] == list(range(1, 41))
    assert rows[0][1] == audit.GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 40))
    assert len({r[2] for r in rows}) == 40


@pytest_asyncio.fixture
async def chain(url: str, replicas: tuple[Database, Database]) -> str:
    for i in range(5):
        await _append(replicas[0], i)
    assert verify(url) == (0, "ok, 5 entries\n")
    return url


async def test_an_edited_column_is_found(chain: str) -> None:
    sql(chain, "UPDATE audit_entries SET username = 'someone-else' WHERE id = 3")
    assert verify(chain) == (
        1,
        "tampered: entry 3: hash does not match (edited) (2 entries verified before it)\n",
    )


async def test_an_edited_and_rehashed_row_is_found_by_the_next(chain: str) -> None:
    sql(chain, "UPDATE audit_entries SET hash = '" + "c" * 64 + "' WHERE id = 2")
    assert verify(chain) == (
        1,
        "tampered: entry 2: hash does not match (edited) (1 entries verified before it)\n",
    )
    # Re-hashing the edited row honestly still breaks the link to the row after it.
    db = Database(chain)
    try:
        with db.engine.connect() as conn:
            row = next(r for r in chain_rows(conn) if r["id"] == 2)
    finally:
        db.dispose()
    row["username"] = "forger"
    forged = audit.entry_hash(row)
    assert all(c in "0123456789abcdef" for c in forged)
    forge = f"UPDATE audit_entries SET username = 'forger', hash = '{forged}' WHERE id = 2"  # noqa: S608
    sql(chain, forge)
    assert verify(chain) == (
        1,
        "tampered: entry 3: prev_hash does not match the previous entry's hash (an entry"
        " before it was edited, deleted, inserted or reordered) (2 entries verified before"
        " it)\n",
    )


async def test_a_deleted_row_is_found(chain: str) -> None:
    sql(chain, "DELETE FROM audit_entries WHERE id = 2")
    assert verify(chain) == (
        1,
        "tampered: entry 3: expected entry 2 here (an entry was deleted or inserted)"
        " (1 entries verified before it)\n",
    )


async def test_reordered_rows_are_found(chain: str) -> None:
    # Swap the positions of entries 2 and 3.
    sql(chain, "UPDATE audit_entries SET id = 100 WHERE id = 2")
    sql(chain, "UPDATE audit_entries SET id = 2 WHERE id = 3")
    sql(chain, "UPDATE audit_entries SET id = 3 WHERE id = 100")
    assert verify(chain) == (
        1,
        "tampered: entry 2: prev_hash does not match the previous entry's hash (an entry"
        " before it was edited, deleted, inserted or reordered) (1 entries verified before"
        " it)\n",
    )


async def test_an_inserted_row_is_found(chain: str) -> None:
    sql(chain, "UPDATE audit_entries SET id = id + 100 WHERE id >= 3")
    sql(chain, "UPDATE audit_entries SET id = id - 99 WHERE id >= 100")
    sql(
        chain,
        "INSERT INTO audit_entries (id, at, operation, environments, outcome, prev_hash, hash)"
        " VALUES (3, CURRENT_TIMESTAMP, 'DELETE', '[]', 'SUCCESS', 'x', 'y')",
    )
    assert verify(chain) == (
        1,
        "tampered: entry 3: prev_hash does not match the previous entry's hash (an entry"
        " before it was edited, deleted, inserted or reordered) (2 entries verified before"
        " it)\n",
    )


def test_an_unreadable_database_exits_2(tmp_path: Path) -> None:
    code, output = verify(f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2
    assert output == "error: can not read the audit log: OperationalError\n"
