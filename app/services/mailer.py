"""Outgoing email over SMTP (replies to left messages, chat transcripts).

Settings (``app/config.py``): ``MAIL_SERVER``, ``MAIL_PORT``, ``MAIL_USERNAME``, ``MAIL_PASSWORD``,
``MAIL_USE_TLS`` (STARTTLS), ``MAIL_USE_SSL`` (SMTPS) and ``MAIL_DEFAULT_SENDER``. A mail is one
UTF-8 message with a plain-text part and, when given, an HTML alternative (the caller escapes
whatever it puts into the HTML).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask_babel import lazy_gettext as _l

from app.services.errors import DomainError

TIMEOUT_SECONDS = 20


class MailFailed(DomainError):
    """The SMTP server could not be reached or refused the mail; nothing was sent."""

    status_code = 502


def build_message(sender: str, to: Sequence[str], subject: str, text: str, html: str | None = None) -> EmailMessage:
    """A UTF-8 message with a text part and an optional HTML alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject  # non-ASCII subjects are RFC 2047 encoded by the email policy
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text, charset="utf-8")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def send_mail(config: Mapping, to: str | Sequence[str], subject: str, text: str, html: str | None = None) -> None:
    """Send one mail through the configured SMTP server.

    Raises ``MailFailed`` when the server cannot be reached, refuses the login or any recipient.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    message = build_message(config.get("MAIL_DEFAULT_SENDER") or "desk@localhost", recipients, subject, text, html)
    host, port = config.get("MAIL_SERVER") or "localhost", int(config.get("MAIL_PORT") or 25)
    try:
        if config.get("MAIL_USE_SSL"):
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if config.get("MAIL_USE_TLS") and not config.get("MAIL_USE_SSL"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailFailed({"_": [str(_l("The email could not be sent (%(reason)s).",
                                       reason=type(exc).__name__))]}) from exc
    if refused:
        raise MailFailed({"_": [str(_l("The mail server refused %(to)s.", to=", ".join(refused)))]})
