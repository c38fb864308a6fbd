"""The fleet store on SQLAlchemy Core: one code base for SQLite and PostgreSQL, dialects only at the edges."""
