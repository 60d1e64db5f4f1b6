"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL, and step down again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from tailorset.db.engine import sync_url
from tailorset.db.models import Base


def test_migrations_match_the_models(database_url, client):  # client: the app has migrated the database
    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == [], f"the models and the migrations disagree: {differences}"
