"""Column types shared by the models.

``EncryptedText`` keeps personal data (ID numbers, bank account numbers, TOTP secrets)
encrypted at rest with Fernet; the key comes from ``FIELD_ENCRYPTION_KEY``.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator


def field_cipher() -> MultiFernet:
    """Return the cipher of the current application (several keys allow rotation)."""
    cipher = current_app.extensions.get("field_cipher")
    if cipher is None:
        keys = [k.strip() for k in current_app.config["FIELD_ENCRYPTION_KEY"].split(",") if k.strip()]
        cipher = MultiFernet([Fernet(k.encode()) for k in keys])
        current_app.extensions["field_cipher"] = cipher
    return cipher


class EncryptedText(TypeDecorator):
    """A text column stored as a Fernet token; ``None`` and ``""`` are stored as NULL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001
        if value is None or value == "":
            return None
        return field_cipher().encrypt(str(value).encode()).decode()

    def process_result_value(self, value, dialect):  # noqa: ANN001
        if value is None:
            return None
        try:
            return field_cipher().decrypt(value.encode()).decode()
        except InvalidToken as exc:  # wrong key: fail loudly rather than show ciphertext
            raise RuntimeError("FIELD_ENCRYPTION_KEY cannot decrypt stored data") from exc
