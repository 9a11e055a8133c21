"""Building blocks shared by the back-office views: row-level scope, CSV export, labels."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from flask import Response, abort, flash
from flask_appbuilder import ModelView, expose
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_appbuilder.security.sqla.models import User
from flask_appbuilder.urltools import get_filter_args
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.interfaces import LoaderOption
from wtforms import ValidationError

from app.models.contracts import Contract
from app.models.crm import Client
from app.permissions import client_in_scope, scoped_accountant_id, sees_sensitive
from app.services.clients import credit_code_error, id_number_error, mask
from app.services.contracts import parse_money
from app.services.errors import DomainError, ValidationFailed
from app.services.integrity import delete_refused, refuse_held_delete, write_refused


def _limit_to_own_clients(model, query, scope: int):  # noqa: ANN001, ANN202
    """*query* of *model* limited to the clients of accountant *scope*; ``None`` for a model that
    has no client."""
    own_clients = select(Client.id).where(Client.accountant_id == scope)
    if model is Client:
        return query.filter(Client.accountant_id == scope)
    if hasattr(model, "client_id"):
        return query.filter(model.client_id.in_(own_clients))
    if hasattr(model, "contract_id"):
        own_contracts = select(Contract.id).where(Contract.client_id.in_(own_clients))
        return query.filter(model.contract_id.in_(own_contracts))
    return None


class ClientScopeFilter(BaseFilter):
    """Row-level rule: an Accountant sees only rows of the clients assigned to them.

    Works for ``Client`` itself, models with ``client_id`` and models with ``contract_id``.
    """

    name = "client scope"
    arg_name = "clientscope"

    def apply(self, query, value):  # noqa: ANN001, ANN201, ARG002
        scope = scoped_accountant_id()
        if scope is None:
            return query
        limited = _limit_to_own_clients(self.model, query, scope)
        if limited is None:
            raise TypeError(f"{self.model} has no client scope")
        return limited


def scope_choices(model, query):  # noqa: ANN001, ANN201
    """The row-level rule for the rows a relation offers as choices: the dropdowns of the screens'
    forms and searches, and the related-field values of the REST APIs' ``_info``. A user who does
    not see every client (an Accountant) is offered only their own clients and the rows that belong
    to them (contracts, ...), and of the users only themselves; everyone else, and every other
    model, is unchanged (views may narrow the choices further)."""
    scope = scoped_accountant_id()
    if scope is None:
        return query
    if isinstance(model, type) and issubclass(model, User):
        return query.filter(model.id == scope)
    limited = _limit_to_own_clients(model, query, scope)
    return query if limited is None else limited


class DeskInterface(SQLAInterface):
    """FAB's data interface whose writes never hand the database driver's text to a user.

    FAB passes a refused write on with the driver's message (SQL, constraint and table names,
    values), which its views flash and its REST API sends in a 422. Here a write refused for a
    constraint (``IntegrityError``: a row still referred to, a duplicate, a missing value) is
    rolled back and raised as a domain error (:func:`~app.services.integrity.delete_refused`,
    409; :func:`~app.services.integrity.write_refused`, 422) that both faces answer in words;
    any other database error goes on as itself (a 503 when the database is unavailable).
    """

    def add(self, item, commit: bool = True) -> None:  # noqa: ANN001
        try:
            super().add(item, commit)
        except IntegrityError as exc:  # FAB re-raises an add's error as it is (rolled back)
            raise write_refused() from exc

    def edit(self, item, commit: bool = True) -> None:  # noqa: ANN001
        try:
            super().edit(item, commit)
        except DatabaseException as exc:
            raise _domain_error(exc, write_refused) from exc

    def delete(self, item, commit: bool = True) -> None:  # noqa: ANN001
        try:
            super().delete(item, commit)
        except DatabaseException as exc:
            raise _domain_error(exc, delete_refused) from exc

    def delete_all(self, items: list) -> None:
        try:
            super().delete_all(items)
        except DatabaseException as exc:
            raise _domain_error(exc, delete_refused) from exc


def _domain_error(exc: DatabaseException, answer) -> BaseException:  # noqa: ANN001
    cause = exc.__cause__
    if isinstance(cause, IntegrityError):
        return answer()
    return cause if cause is not None else exc


def desk_interface(datamodel: SQLAInterface) -> SQLAInterface:
    """*datamodel* made a :class:`DeskInterface` (in place: views share their class's interface),
    so that every view and API of the desk gets its error handling without naming it."""
    if not isinstance(datamodel, DeskInterface):
        if type(datamodel) is SQLAInterface:
            datamodel.__class__ = DeskInterface
        else:
            raise TypeError(f"{type(datamodel).__name__} should derive from DeskInterface")
    return datamodel


class EagerInterface(DeskInterface):
    """FAB's data interface that also loads the relationships a list or detail page shows.

    FAB joins a list's many-to-one columns only when they are dotted (``client.name``); a
    relation column (``client``), a collection (a client's tags, a user's roles) or a relationship
    of a relationship (an agent's groups and their site) is loaded row by row while the page
    renders: one statement per row. *options* are SQLAlchemy loader options
    (``selectinload(Client.tags)``) added to every list, detail and export query, so a page of 25
    rows costs at most one more statement per relationship instead of 25. *related* does the same,
    by column name, for the choices of a relation's dropdown (search and edit forms).

    The interface of a relation (``get_related_interface``: the choices of a dropdown, the values of
    an API's ``_info``, the row a form's choice names) applies ``scope_choices``, so no view offers
    an Accountant another accountant's clients or the list of users.
    """

    def __init__(self, obj, session=None, options: tuple[LoaderOption, ...] = (),  # noqa: ANN001
                 related: dict[str, tuple[LoaderOption, ...]] | None = None, choices: bool = False) -> None:
        super().__init__(obj, session)
        self.loader_options = tuple(options)
        self.related_options = dict(related or {})
        self.choices = choices

    def apply_all(self, query, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        if self.choices:  # before FAB's paging: a filter after LIMIT is an error
            query = scope_choices(self.obj, query)
        return super().apply_all(query, *args, **kwargs).options(*self.loader_options)

    def query_count(self, query, *args, **kwargs) -> int:  # noqa: ANN001, ANN002, ANN003
        if self.choices:  # the count of choices follows the same rule
            query = scope_choices(self.obj, query)
        return super().query_count(query, *args, **kwargs)

    def get_related_interface(self, col_name: str) -> EagerInterface:
        return EagerInterface(self.get_related_model(col_name), options=self.related_options.get(col_name, ()),
                              choices=True)


def target_id(item, relation: str) -> int | None:  # noqa: ANN001
    """The id of the row that *item*'s many-to-one *relation* points at now.

    A form sets the relationship (``item.client``); the foreign key column (``item.client_id``)
    follows only at the next flush, so on an edit it still names the old row. Access rules must
    look at the relationship.
    """
    related = getattr(item, relation)
    return related.id if related is not None else None


def scope_filters() -> list:
    return [["id", ClientScopeFilter, lambda: None]]


def format_secret(value: str | None) -> str:
    """Personal data is shown in full only to users allowed to see it."""
    if not value:
        return ""
    return value if sees_sensitive() else mask(value)


def format_datetime(value: datetime | None) -> str:
    from app.services.timefmt import to_display

    return to_display(value)


# --- WTForms validators ------------------------------------------------------------------

class CreditCodeValidator:
    def __call__(self, form, field) -> None:  # noqa: ANN001
        if field.data:
            field.data = field.data.strip().upper()
        error = credit_code_error(field.data)
        if error:
            raise ValidationError(error)


class IdNumberValidator:
    def __call__(self, form, field) -> None:  # noqa: ANN001
        if field.data:
            field.data = field.data.strip().upper()
        error = id_number_error(field.data)
        if error:
            raise ValidationError(error)


class MoneyValidator:
    def __init__(self, allow_zero: bool = True) -> None:
        self.allow_zero = allow_zero

    def __call__(self, form, field) -> None:  # noqa: ANN001
        if field.data is None:
            return
        try:
            field.data = parse_money(str(field.data), field.name, self.allow_zero)
        except ValidationFailed as exc:
            raise ValidationError(exc.message) from None


class NotBefore:
    """The field's date must not be before the date in *other*."""

    def __init__(self, other: str) -> None:
        self.other = other

    def __call__(self, form, field) -> None:  # noqa: ANN001
        other = form[self.other].data
        if field.data and other and field.data < other:
            raise ValidationError(str(_l("The end date must not be before the start date.")))


# --- view mixins --------------------------------------------------------------------------

class DeskModelView(ModelView):
    """ModelView with the project's conventions.

    * related views the user may not list are hidden on master-detail pages;
    * a business rule refused in ``pre_add``/``pre_update`` rolls back the half-filled item;
    * ``/export.csv`` exports the current filtered list (permission ``can_export``).
    """

    page_size = 25
    csv_columns: list[str] | None = None

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        self.datamodel = desk_interface(self.datamodel)
        super().__init__(**kwargs)
        # Empty values show as blank (not "None"), booleans as a translated yes/no.
        formatters = dict(self.formatters_columns or {})
        for column in set(self.list_columns or []) | set(self.show_columns or []):
            formatters[column] = _blank_none(formatters.get(column), self.datamodel.is_boolean(column)
                                             if hasattr(self.datamodel.obj, column) else False)
        self.formatters_columns = formatters

    def _get_related_views_widgets(self, item, orders=None, pages=None, page_sizes=None,
                                   widgets=None, **args):  # noqa: ANN001, ANN201
        sm = self.appbuilder.sm
        allowed = [v for v in self._related_views
                   if sm.has_access("can_list", v.class_permission_name)]
        saved, self._related_views = self._related_views, allowed
        try:
            return super()._get_related_views_widgets(item, orders=orders, pages=pages,
                                                      page_sizes=page_sizes, widgets=widgets, **args)
        finally:
            self._related_views = saved

    def render_template(self, template, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if "related_views" in kwargs:  # keep the template's list in step with the widgets
            sm = self.appbuilder.sm
            kwargs["related_views"] = [v for v in kwargs["related_views"]
                                       if sm.has_access("can_list", v.class_permission_name)]
        return super().render_template(template, **kwargs)

    def _edit(self, pk):  # noqa: ANN001, ANN201
        try:
            return super()._edit(pk)
        finally:
            self.datamodel.session.rollback()

    def _add(self):  # noqa: ANN201
        try:
            return super()._add()
        finally:
            self.datamodel.session.rollback()

    def delete_rule(self, item) -> None:  # noqa: ANN001
        """Raise a domain error when *item* may not be deleted. By default: when other rows still
        refer to it so that the database would refuse (the message says which)."""
        refuse_held_delete(self.datamodel.session, item, str(item))

    def _delete(self, pk):  # noqa: ANN001, ANN202
        """Delete one row: ``pre_delete`` and :meth:`delete_rule` first; a refusal (from them or,
        after a race, from the database) is flashed in words and deletes nothing."""
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            abort(404)
        try:
            self.pre_delete(item)
            self.delete_rule(item)
            self.datamodel.delete(item)
        except DomainError as exc:
            self.datamodel.session.rollback()
            flash(exc.message, "danger")
        else:
            self.post_delete(item)
            flash(self.delete_row_message, "success")
        self.update_redirect()

    def require_scope(self, client_id: int | None) -> None:
        """Refuse (as a domain error) a row pointing at a client outside the user's scope."""
        if not client_in_scope(client_id):
            raise DomainError({"client": [str(_l("You may not use this client."))]})

    @expose("/export.csv")
    @has_access
    @permission_name("export")
    def export_csv(self) -> Response:
        get_filter_args(self._filters)
        joined = self._filters.get_joined_filters(self._base_filters)
        order_column, order_direction = self.base_order or ("", "")
        _, items = self.datamodel.query(joined, order_column, order_direction)
        columns = self.csv_columns or self.list_columns
        out = io.StringIO()
        out.write("\ufeff")  # lets spreadsheet programs read UTF-8 Chinese text
        writer = csv.writer(out)
        writer.writerow([str(self.label_columns.get(c, c)) for c in columns])
        for item in items:
            row = []
            for col in columns:
                value = self.datamodel.get_values_item(item, [col])[0]
                formatter = self.formatters_columns.get(col)
                value = formatter(value) if formatter else value
                value = getattr(value, "value", value)
                if isinstance(value, Markup):  # formatters escape for HTML; a CSV cell wants the text
                    value = value.striptags()
                row.append(csv_cell("" if value is None else str(value)))
            writer.writerow(row)
        name = f"{self.__class__.__name__.replace('ModelView', '').lower()}.csv"
        return Response(out.getvalue(), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename={name}"})


def csv_cell(text: str) -> str:
    """A text cell for a CSV file: one that a spreadsheet would read as a formula (starting with
    = + - @, a tab or a carriage return) gets a leading apostrophe, so it stays text."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _blank_none(formatter, boolean: bool):  # noqa: ANN001, ANN202
    def _format(value):  # noqa: ANN001, ANN202
        if value is None:
            return ""
        if boolean:
            return _l("Yes") if value else _l("No")
        return formatter(value) if formatter else value

    return _format


def get_or_404(model, pk: int, scoped: bool = True):  # noqa: ANN001, ANN201
    from app.extensions import db

    item = db.session.get(model, pk)
    if item is None:
        abort(404)
    if scoped:
        client_id = item.id if model is Client else getattr(item, "client_id", None)
        if client_id is None and hasattr(item, "contract"):
            client_id = item.contract.client_id
        if not client_in_scope(client_id):
            abort(404)
    return item
