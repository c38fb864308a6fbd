"""Core statements compiled once to the driver's own SQL, for the ingest hot path.

Executing a Core statement costs tens of microseconds of Python around the database call (cache key,
parameter processing, result set-up); a batch of votes on SQLite takes about a millisecond in all, so
the few statements every batch runs (anchor read and upsert, vote insert) are compiled once per engine
and run on the DBAPI cursor with positional parameters. The SQL is still the Core construct's: written
once, rendered by each dialect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


class Prepared:
    """One statement in a dialect's positional form, with the order of its named parameters."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if compiled.positiontup is None:
            raise TypeError(f"{dialect.name}: engines must use a positional paramstyle (got {dialect.paramstyle})")
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup)
        # Values given in the construct itself (e.g. a status), as opposed to bindparam()s left to the caller.
        self._fixed = {n: v for n, v in compiled.params.items() if not compiled.binds[n].required}

    def args(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """The positional arguments for ``params`` (names as given to bindparam)."""
        values = {**self._fixed, **params}
        return tuple(values[n] for n in self.names)

    def execute(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Run once on ``conn``'s DBAPI connection, in its current transaction; the DBAPI cursor."""
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(self.sql, self.args(params))
        return cursor

    def executemany(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Run for every row (tuples already in ``names`` order); how many rows it changed."""
        if self._fixed:  # the tuples carry only the named parameters: a constant bound in the construct is lost
            raise TypeError(f"executemany of a statement with bound constants {sorted(self._fixed)}: use literals")
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if len(rows) == 1:  # psycopg's executemany enters a pipeline: several round trips for one row
            cursor.execute(self.sql, rows[0])
        else:
            cursor.executemany(self.sql, rows)
        return int(cursor.rowcount)
