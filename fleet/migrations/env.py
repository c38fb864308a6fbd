"""Alembic environment of the fleet database: migrates on the connection fleet.db.migrate hands over."""

from __future__ import annotations

from alembic import context

from fleet.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("fleet migrations run through fleet.db.migrate.migrate(engine), which supplies the connection")

# Batch mode: SQLite alters a table by copying it, so every revision must be written that way.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():  # joins the caller's transaction, which holds the migration lock
    context.run_migrations()
