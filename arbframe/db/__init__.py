"""The SQL side of persistence: one schema (SQLAlchemy 2 tables) shared by the state stores
and the sinks, one Alembic history that creates and upgrades it on SQLite and PostgreSQL,
and the engine settings both use (timeouts, SQLite durability, outage detection)."""
