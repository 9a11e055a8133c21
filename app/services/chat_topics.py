"""Conversation topics (对话主题): the managed list, and the topics agents set on a chat.

Rules:
- A topic has a name of 1 to ``MAX_NAME`` characters, unique whatever its case, without control
  characters; a description of at most ``MAX_DESCRIPTION``; a sort order (a whole number, 0 or
  more; lower first) and an active flag. Only active topics are offered and can be added to a
  chat; a topic in use is never deleted (the database refuses it: deactivate it instead), so the
  history keeps the topics it was filed under.
- A conversation holds at most ``MAX_PER_CHAT`` topics. Its topics are set as a whole (the list
  replaces the one before) by a supervisor (``can_supervise``) or by an agent who owns it or was
  invited into it (``chat.Part.invited``), open or closed; anyone else is told the conversation
  does not exist. An inactive topic already on the chat may stay; a new one must be active.
- Setting the topics writes the change and one audit row (``chat_topics``, the topic names before
  and after) in one transaction; setting the same topics again writes nothing.
Errors: ``ValidationFailed`` (bad list, unknown or inactive topic), ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.models.chat import Conversation
from app.models.chat_topics import ChatTopic, conversation_topic
from app.services import audit, chat
from app.services.errors import NotFound, ValidationFailed
from app.services.inputs import MAX_ID

MAX_NAME = 50
MAX_DESCRIPTION = 200
MAX_PER_CHAT = 10
MAX_SORT = 100000
TOPICS_ACTION = "chat_topics"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def validate_topic(session: Session, topic: ChatTopic) -> None:
    """Check and tidy a topic before it is stored (does not commit): see the module rules.

    Raises ``ValidationFailed`` with every problem found."""
    errors: dict[str, list[str]] = {}
    topic.name = topic.name.strip() if isinstance(topic.name, str) else topic.name
    description = topic.description
    topic.description = (description.strip() or None) if isinstance(description, str) else description
    if topic.active is None:
        topic.active = True
    if topic.sort_order is None:
        topic.sort_order = 100
    if not isinstance(topic.name, str) or not topic.name:
        errors["name"] = [str(_l("A topic needs a name."))]
    elif len(topic.name) > MAX_NAME or _control(topic.name):
        errors["name"] = [str(_l("A name of 1 to %(n)d characters.", n=MAX_NAME))]
    if topic.description is not None and (not isinstance(topic.description, str)
                                          or len(topic.description) > MAX_DESCRIPTION):
        errors["description"] = [str(_l("At most %(n)d characters.", n=MAX_DESCRIPTION))]
    if not _is_int(topic.sort_order) or not 0 <= topic.sort_order <= MAX_SORT:
        errors["sort_order"] = [str(_l("A whole number from 0 to %(n)d.", n=MAX_SORT))]
    if not isinstance(topic.active, bool):
        errors["active"] = [str(_l("Must be true or false."))]
    if "name" not in errors:
        with session.no_autoflush:
            clash = session.scalar(select(ChatTopic.id).where(
                func.lower(ChatTopic.name) == topic.name.lower(), ChatTopic.id != (topic.id or -1)))
        if clash is not None:
            errors["name"] = [str(_l("There is already a topic named %(name)s.", name=topic.name))]
    if errors:
        raise ValidationFailed(errors)


def topic_payload(topic: ChatTopic) -> dict:
    return {"id": topic.id, "name": topic.name}


def active_topics(session: Session) -> list[dict]:
    """The topics agents may choose, in their sort order: ``[{id, name}]``."""
    return [topic_payload(t) for t in session.scalars(
        select(ChatTopic).where(ChatTopic.active.is_(True)).order_by(ChatTopic.sort_order, ChatTopic.name,
                                                                     ChatTopic.id))]


def all_topics(session: Session) -> list[ChatTopic]:
    """Every topic, active or not, in their sort order (the history's filter lists them all)."""
    return list(session.scalars(select(ChatTopic).order_by(ChatTopic.sort_order, ChatTopic.name, ChatTopic.id)))


def topics_of(session: Session, conversation_ids: Iterable[int]) -> dict[int, list[dict]]:
    """The topics of each of *conversation_ids* (``[{id, name}]`` in sort order), with one statement;
    conversations without topics are left out."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(conversation_topic.c.conversation_id, ChatTopic.id, ChatTopic.name)
        .join(ChatTopic, ChatTopic.id == conversation_topic.c.topic_id)
        .where(conversation_topic.c.conversation_id.in_(ids))
        .order_by(ChatTopic.sort_order, ChatTopic.name, ChatTopic.id)).all()
    found: dict[int, list[dict]] = {}
    for conversation_id, topic_id, name in rows:
        found.setdefault(conversation_id, []).append({"id": topic_id, "name": name})
    return found


def with_topics(session: Session, rows: list[dict]) -> list[dict]:
    """*rows* (dicts with a ``conversation_id``) each given its ``topics`` (``[{id, name}]``), with
    one statement for them all; returns *rows*."""
    found = topics_of(session, [row["conversation_id"] for row in rows])
    for row in rows:
        row["topics"] = found.get(row["conversation_id"], [])
    return rows


def may_set_topics(session: Session, conversation: Conversation, user_id: int | None, supervises: bool) -> bool:
    """Supervisors, and the agents who own the conversation or were ever invited into it."""
    return supervises or chat.takes_part(session, conversation, user_id, chat.Part.invited)


def _topic_ids(value: object) -> list[int]:
    """*value* as a list of distinct topic ids (order kept), or ``ValidationFailed``."""
    if not isinstance(value, list):
        raise ValidationFailed({"topic_ids": [str(_l("Give the topics as a list of ids."))]})
    if len(value) > MAX_PER_CHAT:
        raise ValidationFailed({"topic_ids": [str(_l("At most %(n)d topics.", n=MAX_PER_CHAT))]})
    if not all(_is_int(v) and 1 <= v <= MAX_ID for v in value):
        raise ValidationFailed({"topic_ids": [str(_l("No such item: an id is a whole number from 1 to %(n)d.",
                                                     n=MAX_ID))]})
    return list(dict.fromkeys(value))


def set_topics(session: Session, conversation_id: object, topic_ids: object, user_id: int | None,
               supervises: bool) -> tuple[Conversation, list[dict]]:
    """Give a conversation exactly the topics *topic_ids* (see the module rules). Returns the
    conversation and its topics as stored (``[{id, name}]``). Commits once, when something changed.

    Raises ``ValidationFailed`` (not a list of ids, too many, an unknown or inactive topic) and
    ``NotFound`` (no such conversation, or one the user may not file)."""
    wanted = _topic_ids(topic_ids)
    conversation = chat.get_conversation(session, conversation_id)
    if not may_set_topics(session, conversation, user_id, supervises):
        raise NotFound({"conversation_id": [str(_l("No such conversation."))]})
    current = {t["id"]: t["name"] for t in topics_of(session, [conversation.id]).get(conversation.id, [])}
    found = {t.id: t for t in session.scalars(select(ChatTopic).where(ChatTopic.id.in_(wanted or [0])))}
    refused = [i for i in wanted if i not in found or (not found[i].active and i not in current)]
    if refused:
        raise ValidationFailed({"topic_ids": [str(_l("No such topic: %(ids)s.", ids=", ".join(map(str, refused))))]})
    added, removed = [i for i in wanted if i not in current], [i for i in current if i not in wanted]
    if added or removed:
        if removed:
            session.execute(delete(conversation_topic).where(conversation_topic.c.conversation_id == conversation.id,
                                                             conversation_topic.c.topic_id.in_(removed)))
        if added:
            session.execute(insert(conversation_topic), [{"conversation_id": conversation.id, "topic_id": i}
                                                         for i in added])
        before = sorted(current.values())
        after = sorted(found[i].name for i in wanted)
        audit.record_event(session, TOPICS_ACTION, object_type="chat_conversation", object_id=conversation.id,
                           summary=f"topics of conversation {conversation.id}", changes={"topics": [before, after]})
        session.commit()
    return conversation, topics_of(session, [conversation.id]).get(conversation.id, [])
