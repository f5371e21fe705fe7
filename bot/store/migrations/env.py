"""Alembic environment: run against the connection the bot hands over (see bot.store.db)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.store.tables  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes.get("connection")
target_metadata = SQLModel.metadata

if connection is None:  # pragma: no cover - offline use by developers writing migrations
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
