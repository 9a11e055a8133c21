"""Mailing the filing reminders (``flask --app app remind``): one mail per digest of
``app.services.reminders``, in the desk's default language, text and HTML.

A mail that cannot be sent (SMTP down, a recipient refused) is reported and the others are still
sent; the command then exits non-zero so that cron reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask import Flask, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from app.extensions import db
from app.models.tax_filing import FilingStatus, TaxFiling
from app.services import mailer, reminders


@dataclass
class RemindResult:
    sent: list[str] = field(default_factory=list)  # "name <address>"
    failed: list[tuple[str, str]] = field(default_factory=list)  # ("name <address>", why)
    planned: list[str] = field(default_factory=list)  # a dry run: who would be mailed


def _status(filing: TaxFiling) -> str:
    if filing.status is FilingStatus.pending:
        return _("To file")
    return _("Filed, tax not paid")


def send_reminders(app: Flask, today: date, dry_run: bool = False) -> RemindResult:
    """Mail each digest of *today*; with *dry_run* only say who would be mailed."""
    from app.models.tax import TaxKind
    from app.views.labels import ENUM_LABELS

    result = RemindResult()
    with force_locale(app.config.get("BABEL_DEFAULT_LOCALE") or "zh_Hans_CN"):
        labels = ENUM_LABELS[TaxKind]
        link = f"{app.config['DESK_URL']}/taxfilings/overdue" if app.config.get("DESK_URL") else None
        for digest in reminders.digests(db.session, today):
            who = f"{digest.name} <{digest.email}>"
            if dry_run:
                result.planned.append(who)
                continue
            context = dict(digest=digest, days=reminders.DUE_DAYS, link=link, status_label=_status,
                           tax_label=lambda kind: str(labels.get(kind, kind.value)))
            subject = _("Filing reminder %(day)s: %(overdue)d overdue, %(due)d due within %(n)d days",
                        day=today.isoformat(), overdue=len(digest.overdue), due=len(digest.due),
                        n=reminders.DUE_DAYS)
            try:
                mailer.send_mail(app.config, digest.email, subject, render_template("mail/reminder.txt", **context),
                                 render_template("mail/reminder.html", **context))
            except mailer.MailFailed as exc:
                result.failed.append((who, exc.message))
            else:
                result.sent.append(who)
    db.session.rollback()  # read only
    return result
