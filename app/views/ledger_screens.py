"""The ledger screens."""

from __future__ import annotations

from flask import Flask
from flask_appbuilder import AppBuilder


def register(app: Flask, appbuilder: AppBuilder) -> None:
    """Add the views of this module to *appbuilder*."""
