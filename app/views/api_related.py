"""The REST API names related rows by id only.

Flask-AppBuilder's ``ModelRestApi`` reads a relationship field (a client's ``accountant``, a
contract's ``client``) with marshmallow-sqlalchemy's ``Related`` field, which also accepts a JSON
object and, when that object names no existing row, builds a new one from it: a ``POST`` of a
client with ``"accountant": {"username": ..., "password": ...}`` would create a user of the
caller's making, past every rule of user creation. Here such a field accepts only the id of an
existing row (a JSON integer, or a string of digits); an object, a list where one id is
expected, or an id that names nothing is a 422 naming the field, and nothing is written.
"""

from __future__ import annotations

from typing import Any

from flask_appbuilder.api.convert import Model2SchemaConverter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from marshmallow import ValidationError, fields
from marshmallow_sqlalchemy.fields import Related, RelatedList


class RelatedById(Related):
    """A ``Related`` field that loads an existing row by its id and nothing else."""

    def _deserialize(self, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(_("Give the id (a number) of an existing record, not an object."))
        found = self.session.get(self.related_model, value)
        if found is None:
            raise ValidationError(_("There is no record with id %(id)s.", id=value))
        return found


def by_id_only(field: fields.Field) -> fields.Field:
    """*field*, when it is a relationship field, made to accept ids only (in place)."""
    if isinstance(field, RelatedList):
        by_id_only(field.inner)
    elif isinstance(field, Related) and not isinstance(field, RelatedById):
        field.__class__ = RelatedById
    return field


class IdOnlyConverter(Model2SchemaConverter):
    """FAB's schema converter whose write schemas (``nested=False``) take related rows by id."""

    def _column2relation(self, datamodel: SQLAInterface, column: Any, nested: bool = False,
                         parent_schema_name: str | None = None) -> fields.Field:
        field = super()._column2relation(datamodel, column, nested=nested, parent_schema_name=parent_schema_name)
        return field if nested else by_id_only(field)
