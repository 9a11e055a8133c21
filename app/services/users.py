"""User accounts created outside the admin screens (CLI, demo seed), and the password check of a sign-in."""

from __future__ import annotations

import logging
import secrets
import string

from flask import Flask
from werkzeug.security import check_password_hash

from app.services import passwords
from app.services.errors import ValidationFailed

log = logging.getLogger(__name__)


def generate_password(length: int = 16) -> str:
    """A random password that satisfies the password policy (app/services/passwords.py)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        core = "".join(secrets.choice(alphabet) for _ in range(length - 4))
        candidate = core + secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + secrets.choice(
            "ABCDEFGHJKLMNPQRSTUVWXYZ") + secrets.choice("23456789") + secrets.choice("!#%+=?@")
        candidate = candidate + secrets.choice("23456789")
        try:
            check_password(candidate)
            return candidate
        except ValidationFailed:
            continue


def check_password(password: str, username: str | None = None, email: str | None = None) -> None:
    """Raise ``ValidationFailed`` (field ``password``) if it breaks the password policy
    (``app.services.passwords``: length, common passwords, the user name, repetition)."""
    passwords.check(password, username, email)


def create_user(app: Flask, username: str, password: str, role_names: list[str], *,
                first_name: str = "", last_name: str = "", email: str | None = None):  # noqa: ANN201
    """Create an active user with the given roles; raise ``ValidationFailed`` on bad input."""
    sm = app.appbuilder.sm
    check_password(password, username, email)
    if sm.find_user(username=username):
        raise ValidationFailed({"username": [f"user {username} already exists"]})
    roles = [sm.find_role(name) for name in role_names]
    if any(r is None for r in roles):
        raise ValidationFailed({"role": [f"unknown role in {role_names}"]})
    user = sm.add_user(username, first_name or username, last_name or "-",
                       email or f"{username}@example.invalid", roles, password=password)
    if not user:
        raise ValidationFailed({"username": [f"could not create {username}"]})
    return user


def password_matches(stored_hash: str, password: str, in_worker: bool) -> bool:
    """Whether *password* matches *stored_hash* (werkzeug's check; its default scrypt costs 70-130
    ms of CPU).

    With *in_worker* (the server runs under gevent or eventlet) the check runs in a worker
    process: on the server's hub it would hold every other request and chat for that long.
    Under threading it runs here (the hash releases the GIL, so other threads go on). When no
    worker can take it (all busy, or none running) it runs here after all, with a warning:
    signing in matters more than a moment's stall."""
    if in_worker:
        from app import workers

        try:
            return bool(workers.call("password.check", stored_hash, password, queue_wait=5.0, limit=10.0))
        except workers.WorkerError as exc:
            log.warning("password checked in the server process: %s", exc)
    return check_password_hash(stored_hash, password)
