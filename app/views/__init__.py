"""Registers every screen, API and blueprint on the AppBuilder instance."""

from __future__ import annotations

from flask import Flask
from flask_appbuilder import AppBuilder
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext


def register_views(app: Flask, appbuilder: AppBuilder) -> None:
    from app.views.account import AccountLockApi, AccountLockView, account_lock, install_password_expiry_hold
    from app.views.api import ClientApi, ContractApi, DocumentApi
    from app.views.audit import AuditLogModelView
    from app.views.clients import (
        BankAccountModelView,
        ClientModelView,
        ContactModelView,
        ServiceRecordModelView,
        TagModelView,
    )
    from app.views.contracts import (
        ContractChangeModelView,
        ContractModelView,
        FeeBillModelView,
        PaymentModelView,
        RenewalView,
    )
    from app.views.documents import DocumentModelView
    from app.views.health import bp as health_bp
    from app.views.mfa import MFAAdminView, MFAView, mfa_enrolled

    clients = dict(category="Clients", category_label=_l("Clients"), category_icon="fa-building")
    appbuilder.add_view(ClientModelView, "Clients", label=_l("Clients"), icon="fa-building", **clients)
    appbuilder.add_view(ContactModelView, "Contacts", label=_l("Contacts"), icon="fa-address-book", **clients)
    appbuilder.add_view(BankAccountModelView, "Bank accounts", label=_l("Bank accounts"), icon="fa-bank",
                        **clients)
    appbuilder.add_view(ServiceRecordModelView, "Service records", label=_l("Service records"),
                        icon="fa-list", **clients)
    appbuilder.add_view(TagModelView, "Tags", label=_l("Tags"), icon="fa-tags", **clients)

    contracts = dict(category="Contracts", category_label=_l("Contracts"), category_icon="fa-file-text")
    appbuilder.add_view(ContractModelView, "Contracts", label=_l("Contracts"), icon="fa-file-text",
                        **contracts)
    appbuilder.add_view(RenewalView, "Renewals due", label=_l("Renewals due"), icon="fa-bell", **contracts)
    appbuilder.add_view(FeeBillModelView, "Fee bills", label=_l("Fee bills"), icon="fa-money", **contracts)
    appbuilder.add_view(PaymentModelView, "Payments received", label=_l("Payments received"),
                        icon="fa-credit-card", **contracts)
    appbuilder.add_view(ContractChangeModelView, "Contract history", label=_l("Contract history"),
                        icon="fa-history", **contracts)

    appbuilder.add_view(DocumentModelView, "Archives", label=_l("Archives"), icon="fa-archive",
                        category="Archives", category_label=_l("Archives"), category_icon="fa-archive")
    appbuilder.add_view(AuditLogModelView, "Audit log", label=_l("Audit log"), icon="fa-shield",
                        category="Security", category_label=_l("Security"))
    appbuilder.add_view_no_menu(MFAView)
    appbuilder.add_view_no_menu(MFAAdminView)
    app.jinja_env.globals["mfa_enrolled"] = mfa_enrolled
    appbuilder.add_view_no_menu(AccountLockView)
    appbuilder.add_api(AccountLockApi)
    app.jinja_env.globals["account_lock"] = account_lock
    install_password_expiry_hold(app)
    appbuilder.add_link("Two-factor authentication", href="/mfa/setup", label=_l("Two-factor authentication"),
                        icon="fa-key", category="Account", category_label=lazy_pgettext("user account", "Account"),
                        category_icon="fa-user")

    appbuilder.add_api(ClientApi)
    appbuilder.add_api(ContractApi)
    appbuilder.add_api(DocumentApi)

    from app.views import (
        chat_admin,
        chat_analytics,
        chat_console,
        chat_faq,
        chat_inbox,
        chat_tools_admin,
        chat_topics,
        chat_transcripts,
        leads,
        ledger_api,
        ledger_reports,
        ledger_screens,
        reports,
        staffing,
        tax,
        tax_filings,
        tax_worksheet,
        work_board,
    )

    for module in (leads, ledger_screens, ledger_api, ledger_reports, chat_admin, chat_console, chat_tools_admin,
                   chat_inbox, chat_faq, chat_topics, chat_transcripts, staffing, chat_analytics,
                   reports, tax, tax_worksheet, tax_filings, work_board):
        module.register(app, appbuilder)
    app.register_blueprint(health_bp)
    from app.views.widget import bp as widget_bp  # the chat widget's script files
    app.register_blueprint(widget_bp)
