"""The agent console page and the JSON it loads (visitors, queue, chats, visitor details, client card)."""

from __future__ import annotations

from flask import Flask
from flask_appbuilder import AppBuilder


def register(app: Flask, appbuilder: AppBuilder) -> None:  # noqa: ARG001
    """Add the screens of this module."""
