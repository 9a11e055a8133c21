"""An agent's own console preferences, stored on their profile (``AgentProfile``) so that they
follow the agent to any browser.

Rules:
- The send key (发送键): ``enter`` (Enter sends, Shift+Enter makes a new line, the default) or
  ``ctrl_enter`` (Ctrl+Enter or ⌘+Enter sends, Enter makes a new line). Only the agent sets their
  own; it is a preference, not an administrative change, so it writes no audit row.
Errors: ``AccessDenied`` (no active agent profile), ``ValidationFailed`` (an unknown value).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models.chat import AgentProfile, SendKey
from app.services.errors import AccessDenied, ValidationFailed

SEND_KEYS = tuple(key.value for key in SendKey)


def preferences(agent: AgentProfile) -> dict:
    """The agent's console preferences as the console gets them."""
    return {"send_key": (agent.send_key or SendKey.enter).value}


def set_send_key(session: Session, agent: AgentProfile | None, send_key: object) -> dict:
    """The agent chooses which key sends a reply; stored on their profile and committed. Returns the
    agent's preferences. Raises ``AccessDenied``, ``ValidationFailed``."""
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
    if send_key not in SEND_KEYS:
        raise ValidationFailed({"send_key": [str(_l("The send key is enter or ctrl_enter."))]})
    agent.send_key = SendKey(send_key)
    session.commit()
    return preferences(agent)
