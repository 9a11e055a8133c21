"""The chat knowledge base (机器人知识库): the entries screen, the REST API ``/api/v1/faq/`` and the
list of questions the bot could not answer.

* Entries: Admin and Manager add, edit and delete; Agents read (screen and API). Every change is
  in the audit log (the model is audited). The rules are in ``app.services.chat_faq``: the screen
  and the API check the same ones, which also rebuild the entry's search terms.
* The API names the site by ``site_id`` only (never a nested object, which FAB would create).
* Unanswered questions: Admin and Manager; each row links to a new entry filled with its text.
"""

from __future__ import annotations

from flask import Flask, request
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, TextAreaField

from app.extensions import db
from app.models.chat import ChatSite
from app.models.chat_faq import FaqEntry
from app.services import chat_faq
from app.services.inputs import parse_id
from app.views.api import DeskApi
from app.views.api_related import IdOnlyConverter
from app.views.chat_admin import CATEGORY
from app.views.common import DeskModelView, EagerInterface, format_datetime

LABELS = {"question": _l("Question"), "answer": _l("Answer"), "keywords": _l("Keywords"),
          "category": _l("Category"), "site": _l("Site"), "site_id": _l("Site"),
          "active": lazy_pgettext("enabled", "Active"), "updated_at": _l("Updated")}
DESCRIPTIONS = {
    "question": _l("What visitors ask, in their words."),
    "answer": _l("What the bot says and agents can insert into their reply (at most 2000 characters)."),
    "keywords": _l("Other words visitors use for it, separated by spaces or commas: they count as much as the "
                   "question."),
    "site": _l("Blank: every site."),
    "site_id": _l("Blank: every site."),
}


class FaqEntryModelView(DeskModelView):
    datamodel = EagerInterface(FaqEntry, options=(joinedload(FaqEntry.site),))
    list_title = _l("Knowledge base")
    show_title = _l("Knowledge base entry")
    add_title = _l("Add knowledge base entry")
    edit_title = _l("Edit knowledge base entry")
    base_order = ("category", "asc")
    list_columns = ["question", "category", "site", "active", "updated_at"]
    search_columns = ["question", "answer", "keywords", "category", "site", "active"]
    show_columns = ["question", "answer", "keywords", "category", "site", "active", "updated_at"]
    add_columns = edit_columns = ["question", "answer", "keywords", "category", "site", "active"]
    label_columns = LABELS
    description_columns = DESCRIPTIONS
    formatters_columns = {"updated_at": format_datetime}
    add_form_extra_fields = edit_form_extra_fields = {
        "answer": TextAreaField(_l("Answer"), render_kw={"rows": 6, "maxlength": chat_faq.MAX_ANSWER}),
        "active": BooleanField(lazy_pgettext("enabled", "Active"), default=True),
    }

    def _get_add_widget(self, form, exclude_cols=None, widgets=None):  # noqa: ANN001, ANN201
        """A new entry may start from an unanswered question: ``?question=…&site_id=…`` fill the form."""
        if request.method == "GET":
            question = request.args.get("question")
            if question and "question" in form:
                form.question.data = question.strip()[:chat_faq.MAX_QUESTION]
            site_id = parse_id(request.args.get("site_id"))
            if site_id is not None and "site" in form:
                form.site.data = db.session.get(ChatSite, site_id)
        return super()._get_add_widget(form, exclude_cols=exclude_cols, widgets=widgets)

    def pre_add(self, item: FaqEntry) -> None:
        chat_faq.validate_entry(db.session, item)

    pre_update = pre_add


FAQ_COLUMNS = ["id", "site_id", "site.name", "category", "question", "answer", "keywords", "active",
               "updated_at"]
FAQ_WRITE = ["site_id", "category", "question", "answer", "keywords", "active"]


class ForeignKeyConverter(IdOnlyConverter):
    """The project's converter whose schemas also carry the foreign-key columns they name (an
    entry's ``site_id``, a plain integer), which marshmallow-sqlalchemy leaves out by default."""

    def _meta_schema_factory(self, columns, model, class_mixin, parent_schema_name=None):  # noqa: ANN001, ANN202
        schema = super()._meta_schema_factory(columns, model, class_mixin, parent_schema_name=parent_schema_name)
        if not columns:
            return schema

        # (named as the schema it extends: the OpenAPI document names each model's schemas apart)
        meta = type("Meta", (schema.Meta,), {"include_fk": True})
        return type(schema.__name__, (schema,), {"Meta": meta})


class ChatFaqApi(DeskApi):
    """``/api/v1/faq/``: the knowledge base entries (Manager and Admin write, Agents read)."""

    resource_name = "faq"
    model2schemaconverter = ForeignKeyConverter
    datamodel = EagerInterface(FaqEntry)
    base_filters = []
    list_columns = FAQ_COLUMNS
    show_columns = FAQ_COLUMNS
    add_columns = FAQ_WRITE
    edit_columns = FAQ_WRITE
    search_columns = ["question", "answer", "keywords", "category", "active"]
    order_columns = ["id", "question", "category", "updated_at"]
    label_columns = LABELS
    description_columns = DESCRIPTIONS

    def pre_add(self, item: FaqEntry) -> None:
        chat_faq.validate_entry(db.session, item)

    pre_update = pre_add


class FaqUnansweredView(BaseView):
    """Questions the bot could not answer, most asked first, each with a link to a new entry."""

    route_base = "/chat/faq/unanswered"
    default_view = "list"

    @expose("/")
    @has_access
    def list(self):  # noqa: ANN201
        rows = chat_faq.unanswered(db.session)
        return self.render_template("chat_faq/unanswered.html", rows=rows, when=format_datetime)


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the knowledge base screens and its API."""
    appbuilder.add_view(FaqEntryModelView, "Knowledge base", label=_l("Knowledge base"), icon="fa-book",
                        **CATEGORY)
    appbuilder.add_view(FaqUnansweredView, "Unanswered questions", label=_l("Unanswered questions"),
                        icon="fa-question-circle", **CATEGORY)
    appbuilder.add_api(ChatFaqApi)
