"""Durable state: SQLModel tables, repositories, Alembic migrations and leases."""
