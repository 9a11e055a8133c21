"""Password policy and password changes (密码策略).

The policy (after NIST SP 800-63B: length and a list of known-bad passwords, no composition rules):
- at least ``MIN_LENGTH`` (10) characters;
- not one of the 20,000 most common passwords (``app/data/common-passwords.txt``, compared
  case-insensitively);
- not containing the user's name (or the part of their email before the @);
- not mostly repetition or sequences: with each run of one repeated character (``aaaa``) or of
  a straight sequence (``1234``, ``dcba``) counted as one, and a repeated block (``ab12ab12``)
  counted once, at least ``MIN_LENGTH`` characters remain.

Changes:
- ``change_own``: the user gives the current password, then a new one that passes the policy.
- ``reset_by_admin``: an Admin sets another user's password (it passes the policy too).
Either way the stored hash changes, which (app/services/credentials.py) ends all the user's
sessions and API tokens and writes a ``password_changed`` audit row in the same transaction.
Both raise ``ValidationFailed`` (fields ``current_password``, ``password``) and write nothing
then; the caller commits.
"""

from __future__ import annotations

import functools
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from app.services.errors import NotFound, ValidationFailed

MIN_LENGTH = 10
COMMON_PASSWORDS = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


@functools.cache
def _common() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _smallest_block(text: str) -> str:
    """``ab12ab12ab12`` -> ``ab12``; text that is not one block repeated stays as it is."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return text[:size]
    return text


def distinct_length(password: str) -> int:
    """The length of *password* once runs of one character and straight sequences count as one
    character each, and a block repeated counts once."""
    text = _smallest_block(password.lower())
    count, previous_step = 0, None
    for index, char in enumerate(text):
        step = ord(char) - ord(text[index - 1]) if index else None
        if step is not None and (step == 0 or (step in (1, -1) and step == previous_step)):
            previous_step = step
            continue
        previous_step = step
        count += 1
    return count


def policy_errors(password: str | None, username: str | None = None, email: str | None = None) -> list[str]:
    """The rules *password* breaks, as messages (empty: it is acceptable)."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        return [str(_l("Use at least %(n)d characters.", n=MIN_LENGTH))]
    lowered = password.lower()
    errors = []
    if lowered in _common():
        errors.append(str(_l("This is one of the most common passwords: choose another one.")))
    names = {(username or "").strip().lower(), (email or "").split("@")[0].strip().lower()}
    if any(len(name) >= 3 and name in lowered for name in names):
        errors.append(str(_l("The password must not contain the user name.")))
    if distinct_length(password) < MIN_LENGTH:
        errors.append(str(_l("The password is too repetitive or predictable (such as aaaa or 1234): "
                             "make it longer or less regular.")))
    return errors


def check(password: str | None, username: str | None = None, email: str | None = None) -> None:
    """Raise ``ValidationFailed`` (field ``password``) if *password* breaks the policy."""
    errors = policy_errors(password, username, email)
    if errors:
        raise ValidationFailed({"password": errors})


def hash_password(password: str) -> str:
    """The stored form of *password* (FAB's hash settings)."""
    return generate_password_hash(password=password,
                                  method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
                                  salt_length=current_app.config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16))


def _user(session: Session, user_id: int):  # noqa: ANN202
    from flask_appbuilder.security.sqla.models import User

    user = session.get(User, user_id)
    if user is None:
        raise NotFound(str(_l("No such user.")))
    return user


def change_own(session: Session, user_id: int, current: str | None, new: str | None, *,
               in_worker: bool = False) -> None:
    """The user *user_id* changes their own password: *current* must be their present password,
    *new* must pass the policy. Raises ``ValidationFailed`` (``current_password`` / ``password``);
    nothing is written then. The caller commits."""
    from app.services.users import password_matches

    user = _user(session, user_id)
    if not current or not user.password or not password_matches(user.password, current, in_worker=in_worker):
        raise ValidationFailed({"current_password": [str(_l("The current password is not correct."))]})
    check(new, user.username, user.email)
    if new == current:
        raise ValidationFailed({"password": [str(_l("The new password must differ from the current one."))]})
    user.password = hash_password(new)
    session.flush()


def reset_by_admin(session: Session, user_id: int, new: str | None) -> None:
    """Set another user's password (Admin): *new* must pass the policy. Raises ``NotFound``,
    ``ValidationFailed`` (``password``); nothing is written then. The caller commits."""
    user = _user(session, user_id)
    check(new, user.username, user.email)
    user.password = hash_password(new)
    session.flush()


POLICY_HINT = _l("At least 10 characters; not a common password, not the user name, not mostly repeated or "
                 "sequential characters. A passphrase of a few words is easy to remember.")


def fab_validator(password: str) -> None:
    """Flask-AppBuilder's password hook (``FAB_PASSWORD_COMPLEXITY_VALIDATOR``): the policy without
    the user name, for any FAB form that asks."""
    from flask_appbuilder.exceptions import PasswordComplexityValidationError

    errors = policy_errors(password)
    if errors:
        raise PasswordComplexityValidationError(" ".join(errors))
