from sqlalchemy import inspect

from bot.store.db import make_engine, migrate


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # a second start applies nothing and fails nothing
    tables = set(inspect(engine).get_table_names())
    assert {
        "incidents",
        "alerts",
        "timeline",
        "audit",
        "silences",
        "card_refs",
        "outbox",
        "rule_state",
        "settings_kv",
        "leases",
        "notification_log",
        "idempotency_keys",
        "alembic_version",
    } <= tables
    engine.dispose()
