"""The schema comes from Alembic: the migrated database matches the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from sqlalchemy import inspect

from app.extensions import db


def test_migrations_match_the_models(app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Model.metadata)
    assert diff == []


def test_every_table_is_created_by_migrations_not_create_all(app):
    assert app.config["FAB_CREATE_DB"] is False
    tables = set(inspect(db.engine).get_table_names())
    assert "alembic_version" in tables
    assert {t.name for t in Model.metadata.sorted_tables} <= tables
