"""The payload of every socket event, field by field: checked by the guard (``app.sockets.guard``)
before any handler runs, so that a payload of the wrong shape is refused the same way by every
event and nothing is written.

Rules (docs/socket-protocol.md, "Payload limits"):
- A payload is a JSON object (or absent); any other value is refused.
- A field absent or ``null`` is left to the handler (which knows whether it is required). A field
  that is present has the type its event declares, or the payload is refused naming the field:
  a flag is JSON ``true`` or ``false`` only (never ``"yes"``, ``1`` or ``"true"``); an id is a whole
  number from 1 to ``MAX_ID``; a position (``last_message_id``) a whole number from 0 to ``MAX_ID``;
  a text at most its length (a message's text at most ``chat.MAX_TEXT`` characters).
- Fields an event does not declare are ignored, but no text anywhere in a payload holds the NUL
  character and a payload nests at most ``MAX_DEPTH`` levels (``inputs.hostile_part``).
- A packet larger than ``CHAT_SOCKET_MAX_BYTES`` never reaches the guard: Engine.IO closes the
  connection. The limit is far above the longest payload these rules let through, so every
  payload a client may send is answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from app.services import (
    chat,
    chat_crm,
    chat_faq,
    chat_inbox,
    chat_prechat,
    chat_team,
    chat_tools,
    chat_topics,
    leads,
    tracking,
)
from app.services.errors import ValidationFailed
from app.services.inputs import MAX_DEPTH, MAX_ID, hostile_part


@dataclass(frozen=True)
class Field:
    """One field's type: ``id`` (1..MAX_ID), ``position`` (0..MAX_ID), ``number`` (any whole number
    from -MAX_ID to MAX_ID), ``flag`` (true or false), ``ids`` (a list of at most *max_length* ids)
    or ``text`` (at most *max_length* characters).
    A field with a *label* (what a visitor sees it called) names it in its error."""

    kind: str
    max_length: int = 0
    label: object = None

    def problem(self, value: object) -> str | None:
        """Why *value* is not of this type, translated (after the field's label, when it has one);
        ``None`` when it is."""
        problem = self._problem(value)
        if problem is None or self.label is None:
            return problem
        return str(_l("%(field)s: %(problem)s", field=str(self.label), problem=problem))

    def _problem(self, value: object) -> str | None:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "flag":
            return None if isinstance(value, bool) else str(_l("Must be true or false."))
        if self.kind == "id":
            return None if whole and 1 <= value <= MAX_ID else \
                str(_l("No such item: an id is a whole number from 1 to %(n)d.", n=MAX_ID))
        if self.kind == "position":
            return None if whole and 0 <= value <= MAX_ID else \
                str(_l("Must be a whole number from 0 to %(n)d.", n=MAX_ID))
        if self.kind == "number":
            return None if whole and -MAX_ID <= value <= MAX_ID else str(_l("Must be a whole number."))
        if self.kind == "ids":
            return _ids_problem(value, self.max_length)
        if not isinstance(value, str):
            return str(_l("Must be text."))
        if len(value) > self.max_length:
            return str(_l("At most %(n)d characters.", n=self.max_length))
        return None


def _ids_problem(value: object, most: int) -> str | None:
    """Why *value* is not a list of at most *most* ids, translated; ``None`` when it is one."""
    if not isinstance(value, list):
        return str(_l("Must be a list of ids."))
    if len(value) > most:
        return str(_l("At most %(n)d items.", n=most))
    if any(ID.problem(item) is not None for item in value):
        return str(_l("No such item: an id is a whole number from 1 to %(n)d.", n=MAX_ID))
    return None


ID = Field("id")
POSITION = Field("position")
NUMBER = Field("number")
FLAG = Field("flag")
CLIENT_MSG_ID = Field("text", chat.MAX_CLIENT_ID)
MESSAGE_TEXT = Field("text", chat.MAX_TEXT)
SHORT_TEXT = Field("text", 100)

_MESSAGE = {"client_msg_id": CLIENT_MSG_ID, "text": MESSAGE_TEXT}

# (namespace, event) -> {field: type}. Every event of both namespaces is listed (a test checks it).
SCHEMAS: dict[tuple[str, str], dict[str, Field]] = {
    ("/visitor", "message"): _MESSAGE,
    ("/visitor", "typing"): {"draft": MESSAGE_TEXT},
    ("/visitor", "resume"): {"last_message_id": POSITION},
    ("/visitor", "rate"): {"score": NUMBER, "comment": Field("text", 1000)},
    ("/visitor", "close"): {},
    ("/visitor", "page_view"): {"url": Field("text", tracking.MAX_URL), "title": Field("text", tracking.MAX_TITLE),
                                "referrer": Field("text", tracking.MAX_REFERRER), "screen": Field("text", 20)},
    ("/visitor", "heartbeat"): {"page_view_id": ID},
    ("/visitor", "invite_response"): {"invitation_id": ID, "accepted": FLAG},
    ("/visitor", "leave_message"): {**_MESSAGE, "name": Field("text", chat_inbox.MAX_NAME),
                                    "phone": Field("text", 30), "email": Field("text", chat_inbox.MAX_EMAIL)},
    ("/visitor", "transcript"): {"email": Field("text", chat_inbox.MAX_EMAIL)},
    ("/visitor", "handoff"): {},
    ("/visitor", "read"): {"message_id": ID},
    ("/visitor", "history"): {"before_id": ID},
    ("/visitor", "prechat"): {"client_msg_id": CLIENT_MSG_ID,
                              "name": Field("text", chat_inbox.MAX_NAME, _l("Your name")),
                              "phone": Field("text", chat_prechat.MAX_PHONE, _l("Phone")),
                              "email": Field("text", chat_inbox.MAX_EMAIL, _l("Email")),
                              "question": Field("text", chat.MAX_TEXT, _l("Your question"))},
    ("/agent", "ping"): {},
    ("/agent", "status"): {"status": Field("text", 20)},
    ("/agent", "queue_list"): {},
    ("/agent", "accept"): {"conversation_id": ID},
    ("/agent", "decline"): {"conversation_id": ID},
    ("/agent", "message"): {"conversation_id": ID, **_MESSAGE, "note": FLAG},
    ("/agent", "typing"): {"conversation_id": ID},
    ("/agent", "close"): {"conversation_id": ID},
    ("/agent", "block_visitor"): {"conversation_id": ID, "reason": Field("text", chat_tools.MAX_BLOCK_REASON)},
    ("/agent", "resume"): {"conversation_id": ID, "last_message_id": POSITION},
    ("/agent", "transfer"): {"conversation_id": ID, "to_agent_id": ID, "to_group_id": ID,
                             "note": Field("text", chat_team.MAX_NOTE)},
    ("/agent", "invite_agent"): {"conversation_id": ID, "agent_id": ID},
    ("/agent", "accept_invite"): {"conversation_id": ID},
    ("/agent", "leave"): {"conversation_id": ID},
    ("/agent", "watch"): {"conversation_id": ID},
    ("/agent", "unwatch"): {"conversation_id": ID},
    ("/agent", "whisper"): {"conversation_id": ID, **_MESSAGE},
    ("/agent", "team_message"): _MESSAGE,
    ("/agent", "team_history"): {"last_id": POSITION},
    ("/agent", "invite"): {"visitor_id": ID, "text": Field("text", chat_tools.MAX_INVITATION_TEXT)},
    ("/agent", "faq_search"): {"q": Field("text", chat_faq.MAX_QUERY)},
    ("/agent", "preferences"): {"send_key": Field("text", 20)},
    ("/agent", "read"): {"conversation_id": ID, "message_id": ID},
    ("/agent", "set_topics"): {"conversation_id": ID, "topic_ids": Field("ids", chat_topics.MAX_PER_CHAT)},
    ("/agent", "lead_create"): {"visitor_id": ID, "conversation_id": ID, "name": Field("text", chat_inbox.MAX_NAME),
                                "company": Field("text", leads.MAX_COMPANY), "phone": Field("text", leads.MAX_PHONE),
                                "email": Field("text", chat_inbox.MAX_EMAIL),
                                "question": Field("text", leads.MAX_TEXT)},
    ("/agent", "client_search"): {"q": Field("text", chat_crm.MAX_QUERY)},
    ("/agent", "contact_attach"): {"visitor_id": ID, "client_id": ID, "name": Field("text", chat_inbox.MAX_NAME),
                                   "position": Field("text", leads.MAX_POSITION),
                                   "phone": Field("text", leads.MAX_PHONE),
                                   "email": Field("text", chat_inbox.MAX_EMAIL)},
    ("/agent", "statement_send"): {"conversation_id": ID},
}


def check_payload(namespace: str, event: str, data: tuple) -> None:
    """Refuse (``ValidationFailed``, naming every bad field) a payload that breaks the rules above.
    An event without a schema only gets the checks every payload gets (NUL, depth, an object)."""
    payload = data[0] if data else None
    found = hostile_part(payload, MAX_DEPTH)
    if found == "depth":
        raise ValidationFailed({"_": [str(_l("The data is nested too deeply."))]})
    if found is not None:
        raise ValidationFailed({found: [str(_l("Text may not contain the NUL character."))]})
    if payload is None:
        return
    if not isinstance(payload, dict):
        raise ValidationFailed({"_": [str(_l("The data of an event is an object."))]})
    schema = SCHEMAS.get((namespace, event), {})
    errors = {name: [problem] for name, field in schema.items()
              if payload.get(name) is not None and (problem := field.problem(payload[name])) is not None}
    if errors:
        raise ValidationFailed(errors)
