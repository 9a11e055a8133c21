"""Audit log and multi-factor authentication records."""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import utcnow
from app.models.types import EncryptedText


class AuditLog(Model):
    """One audited event: a login attempt or a change to a business record."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)  # no FK: survives user deletion
    username: Mapped[str | None] = mapped_column(String(256))
    ip: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(30), nullable=False, index=True)
    object_type: Mapped[str | None] = mapped_column(String(60), index=True)
    object_id: Mapped[str | None] = mapped_column(String(60))
    summary: Mapped[str | None] = mapped_column(String(300))
    changes: Mapped[str | None] = mapped_column(Text)  # JSON {"field": [old, new]}


class UserMFA(Model):
    """A user's TOTP enrolment; the secret is encrypted at rest."""

    __tablename__ = "user_mfa"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(EncryptedText, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_counter: Mapped[int | None] = mapped_column(Integer)  # refuses a code used twice


class MFARecoveryCode(Model):
    __tablename__ = "mfa_recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserCredential(Model):
    """A user's sign-in state beside FAB's ``ab_user`` row (one row per user, written on first need).

    ``version`` is embedded in every session and API token of the user; raising it (password
    change, deactivation) ends them all. ``password_changed_at`` drives password expiry;
    ``failed_count`` / ``failed_since`` count wrong passwords since the last success, and
    ``locked_at`` is set when they reach the limit (app/services/signin.py)."""

    __tablename__ = "user_credential"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    failed_since: Mapped[datetime | None] = mapped_column(DateTime)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserSession(Model):
    """A signed-in browser session, known server-side: the cookie carries a random id whose hash is
    the key here. Sign-out deletes the row, so a copy of the old cookie no longer signs anyone in."""

    __tablename__ = "user_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False, index=True)
