"""Alembic environment: runs against the engine handed in by healthy_homes.store.db."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import healthy_homes.store.models  # noqa: F401  (registers the tables on the metadata)

target_metadata = SQLModel.metadata
config = context.config


def run_migrations_online() -> None:
    """Migrate using the engine passed in config.attributes (or the URL option)."""
    engine = config.attributes.get("engine")
    if engine is None:
        from sqlalchemy import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
