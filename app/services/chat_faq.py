"""The chat knowledge base (机器人知识库): entries, their search, the bot's answers and the questions
it could not answer.

Rules:
- An entry has a question (1–200 characters), an answer (1–``chat.MAX_TEXT`` characters, so that it
  fits in a chat message), keywords (at most 200, separated by blanks or commas), a category (at
  most 50), a site (blank: every site; otherwise an existing site) and an active flag. Text is
  stripped; every problem is reported at once (``ValidationFailed``) and nothing is written.
- Search terms (分词): text is normalised (NFKC, lower case); each run of Chinese characters, cut
  at particles, pronouns and question words (的, 吗, 你, 们, 怎么 ...), gives its overlapping
  character pairs, each run of latin letters and digits one word; filler words (请问, the, how
  ...) are dropped. Text with no such term (a lone character, 税) gives its single characters. The
  terms of an entry are stored in ``chat_faq_term`` whenever it is saved (``validate_entry``),
  each with its weight: 3 when it is in the question or the keywords, 2 in the category, 1 in
  the answer only.
- A search ranks the active entries of the given sites (and of every site) by the summed weight of
  the query's terms they hold, in one grouped SQL query over the term index (the same on SQLite
  and PostgreSQL), then by id; at most ``MAX_QUERY_TERMS`` terms of a query count.
- The bot answers a visitor's message while the conversation waits in the queue (no agent was
  offered it: nobody is online, or everyone is busy) and the visitor has not asked for a person
  (``request_agent``), with the best entry when it is a good match: at least a third of the
  message's terms, and at least two of them (one for a one-term message), are in the entry's
  question or keywords. Its answer is stored as a ``bot`` message (once per visitor message).
  Without a good match nothing is said and the message is recorded as unanswered (when it has
  search terms at all: a bare greeting is not a question).
Every entry point that writes commits once. Errors: ``ValidationFailed``, ``NotFound``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import ChatMessage, ChatSite, Conversation, ConversationStatus, SenderType
from app.models.chat_faq import FaqEntry, FaqTerm, FaqUnanswered
from app.services import chat
from app.services.errors import NotFound, ValidationFailed
from app.services.inputs import parse_id

MAX_QUESTION = 200
MAX_ANSWER = chat.MAX_TEXT
MAX_KEYWORDS = 200
MAX_CATEGORY = 50
MAX_QUERY = 100  # an agent's search
MAX_QUERY_TERMS = 50
MAX_TERM = 40
SEARCH_LIMIT = 10
UNANSWERED_LIMIT = 200
STRONG = 3  # the weight of a term of the question or the keywords
WEIGHTS = (("question", 3), ("keywords", 3), ("category", 2), ("answer", 1))
BOT_KEY = "bot:"  # client_msg_id of a bot answer: SYSTEM_PREFIX + BOT_KEY + the visitor message's id
HANDOFF_KEY = "handoff"

_RUNS = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)|([0-9a-z]+)")
# Particles and pronouns end a run of Chinese characters: pairs across them ("的记" in 你们的记账)
# would only add noise.
_PARTICLES = re.compile("[的了吗呢吧啊呀我你您们他她和与及或是在怎么什]+")
# Words that say nothing about the subject: dropped from queries and entries alike.
STOP_TERMS = frozenset({
    "请问", "问一", "一下", "可以", "怎么", "什么", "不是", "谢谢", "有没", "没有", "一个", "需要",
    "the", "a", "an", "is", "are", "how", "what", "do", "does", "i", "to", "of", "and", "my", "for", "in",
    "can", "you", "me", "it", "be", "we", "please",
})


def search_terms(text: object) -> list[str]:
    """The distinct search terms of *text*, in order of first appearance (see the module rules)."""
    if not isinstance(text, str):
        return []
    found: dict[str, None] = {}
    singles: dict[str, None] = {}
    for cjk, word in _RUNS.findall(unicodedata.normalize("NFKC", text).lower()):
        if word:
            if word not in STOP_TERMS:
                found.setdefault(word[:MAX_TERM], None)
            continue
        for piece in _PARTICLES.split(cjk):
            if len(piece) == 1:
                singles.setdefault(piece, None)
            for term in (piece[i:i + 2] for i in range(len(piece) - 1)):
                if term not in STOP_TERMS:
                    found.setdefault(term, None)
    return list(found or singles)


def entry_terms(entry: FaqEntry) -> dict[str, int]:
    """Each search term of an entry with its weight (the highest of the fields holding it)."""
    weights: dict[str, int] = {}
    for name, weight in WEIGHTS:
        for term in search_terms(getattr(entry, name) or ""):
            weights[term] = max(weight, weights.get(term, 0))
    return weights


def _clean(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def validate_entry(session: Session, entry: FaqEntry) -> None:
    """Check and tidy an entry before it is stored, and (re)build its search terms (does not commit).

    Raises ``ValidationFailed`` with every problem found (see the module rules)."""
    errors: dict[str, list[str]] = {}
    entry.question = _clean(entry.question) or ""
    entry.answer = _clean(entry.answer) or ""
    entry.keywords = _clean(entry.keywords)
    entry.category = _clean(entry.category)
    if entry.active is None:
        entry.active = True
    if not entry.question:
        errors["question"] = [str(_l("An entry needs a question."))]
    elif len(entry.question) > MAX_QUESTION:
        errors["question"] = [str(_l("At most %(n)d characters.", n=MAX_QUESTION))]
    if not entry.answer:
        errors["answer"] = [str(_l("An entry needs an answer."))]
    elif len(entry.answer) > MAX_ANSWER:
        errors["answer"] = [str(_l("At most %(n)d characters.", n=MAX_ANSWER))]
    if entry.keywords and len(entry.keywords) > MAX_KEYWORDS:
        errors["keywords"] = [str(_l("At most %(n)d characters.", n=MAX_KEYWORDS))]
    if entry.category and len(entry.category) > MAX_CATEGORY:
        errors["category"] = [str(_l("At most %(n)d characters.", n=MAX_CATEGORY))]
    site_id = entry.site_id if entry.site_id is not None else getattr(entry.site, "id", None)
    if site_id is not None:
        with session.no_autoflush:
            if not isinstance(site_id, int) or parse_id(site_id) is None or session.get(ChatSite, site_id) is None:
                errors["site_id"] = [str(_l("No such site."))]
    if errors:
        raise ValidationFailed(errors)
    weights = entry_terms(entry)
    with session.no_autoflush:  # the old rows (orphans) are deleted in the same flush
        entry.terms = [FaqTerm(term=term, weight=weight) for term, weight in weights.items()]


@dataclass(frozen=True)
class Hit:
    """An entry found by a search: its summed term weight and how many question/keyword terms matched."""

    entry: FaqEntry
    score: int
    strong: int


def search(session: Session, text: object, site_ids: list[int] | set[int] | None, limit: int = SEARCH_LIMIT,
           any_site: bool = False) -> tuple[list[str], list[Hit]]:
    """The query's terms and the active entries of *site_ids* (and of every site) that hold any of
    them, best first (see the module rules); *any_site* searches the entries of all sites."""
    terms = search_terms(text)[:MAX_QUERY_TERMS]
    if not terms:
        return terms, []
    score = func.sum(FaqTerm.weight)
    strong = func.sum(case((FaqTerm.weight >= STRONG, 1), else_=0))
    query = (select(FaqTerm.faq_id, score.label("score"), strong.label("strong"))
             .join(FaqEntry, FaqEntry.id == FaqTerm.faq_id)
             .where(FaqTerm.term.in_(terms), FaqEntry.active.is_(True)))
    if not any_site:
        query = query.where(or_(FaqEntry.site_id.is_(None), FaqEntry.site_id.in_(sorted(site_ids or ()))))
    rows = session.execute(query.group_by(FaqTerm.faq_id).order_by(score.desc(), strong.desc(), FaqTerm.faq_id)
                           .limit(limit)).all()
    entries = {e.id: e for e in session.scalars(select(FaqEntry).where(FaqEntry.id.in_([r[0] for r in rows])))}
    return terms, [Hit(entries[r[0]], int(r[1]), int(r[2])) for r in rows if r[0] in entries]


def has_entries(session: Session, site_id: int) -> bool:
    """Whether an active entry answers visitors of the site (its own or one for every site)."""
    return session.scalar(select(FaqEntry.id).where(
        FaqEntry.active.is_(True), or_(FaqEntry.site_id.is_(None), FaqEntry.site_id == site_id)).limit(1)) is not None


def good_match(terms: list[str], hit: Hit) -> bool:
    """Whether the bot may answer with *hit*: at least a third of the query's terms, and at least
    two (one for a one-term query), are in the entry's question or keywords."""
    return hit.strong * 3 >= len(terms) and hit.strong >= min(2, len(terms))


def search_for_agent(session: Session, agent_site_ids: set[int] | None, text: object,
                     limit: int = SEARCH_LIMIT) -> list[dict]:
    """An agent's search from the console: the entries of the sites they serve (*agent_site_ids*;
    ``None``: every site, a supervisor) and of every site, best first, at most *limit*.
    Raises ``ValidationFailed`` when *text* is not text of 1 to ``MAX_QUERY`` characters."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_QUERY:
        raise ValidationFailed({"q": [str(_l("Type 1 to %(n)d characters to search.", n=MAX_QUERY))]})
    _, hits = search(session, text, agent_site_ids, limit, any_site=agent_site_ids is None)
    return [entry_payload(hit.entry) for hit in hits]


def entry_payload(entry: FaqEntry) -> dict:
    """An entry as the console receives it (text as stored: the console inserts it as text)."""
    return {"id": entry.id, "question": entry.question, "answer": entry.answer, "category": entry.category,
            "site_id": entry.site_id}


# --- the bot ------------------------------------------------------------------------------------


def _question_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())[:500]


def handed_off(session: Session, conversation_id: int) -> bool:
    """Whether the visitor asked for a person in this conversation (the bot is quiet from then on)."""
    return session.scalar(select(ChatMessage.id).where(
        ChatMessage.conversation_id == conversation_id,
        ChatMessage.client_msg_id == chat.SYSTEM_PREFIX + HANDOFF_KEY)) is not None


def answer(session: Session, message_id: int) -> ChatMessage | None:
    """The bot's answer to a visitor's message (see the module rules): the stored ``bot`` message,
    or None when the bot stays quiet (the question is then recorded as unanswered when it has
    search terms). Idempotent per message. Commits."""
    message = session.get(ChatMessage, message_id)
    if message is None or message.sender_type != SenderType.visitor:
        return None
    conversation = session.get(Conversation, message.conversation_id)
    if conversation is None or conversation.status != ConversationStatus.queued \
            or handed_off(session, conversation.id):
        return None
    key = chat.SYSTEM_PREFIX + BOT_KEY + str(message.id)
    stored = session.scalar(select(ChatMessage).where(ChatMessage.conversation_id == conversation.id,
                                                      ChatMessage.client_msg_id == key))
    if stored is not None:
        return stored
    terms, hits = search(session, message.text, [conversation.site_id], limit=1)
    if hits and good_match(terms, hits[0]):
        reply = ChatMessage(conversation_id=conversation.id, sender_type=SenderType.bot, client_msg_id=key,
                            text=hits[0].entry.answer[:chat.MAX_TEXT], created_at=utcnow())
        session.add(reply)
        session.commit()
        return reply
    if terms:
        question = message.text.strip()[:500]
        session.add(FaqUnanswered(site_id=conversation.site_id, conversation_id=conversation.id, question=question,
                                  question_key=_question_key(question)))
        session.commit()
    return None


def request_agent(session: Session, visitor_id: int | None, online: bool) -> ChatMessage | None:
    """转人工: the visitor asks for a person instead of the bot. Nothing is removed: a queued chat
    stays in the queue, and the bot answers no more in it; the line telling the visitor so is
    stored once per conversation (returned the first time, else None). *online*: whether an
    agent serves the site now (otherwise the line points to the leave-a-message form).
    Raises ``NotFound`` when the visitor has no open conversation. Commits."""
    visitor = session.get(chat.Visitor, visitor_id) if visitor_id else None
    conversation = chat.open_conversation(session, visitor) if visitor is not None else None
    if conversation is None:
        raise NotFound({"conversation": [str(_l("There is no open conversation."))]})
    text = _l("You asked for a person: an agent will answer as soon as one is free.") if online else \
        _l("No agent is online right now: please leave a message below and we will get back to you.")
    return chat.store_system_message(session, conversation, HANDOFF_KEY, str(text))


# --- unanswered questions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Unanswered:
    """A question the bot could not answer, with how often it was asked and when last."""

    question: str
    site_id: int
    site_name: str
    count: int
    last_asked: object


def unanswered(session: Session, limit: int = UNANSWERED_LIMIT) -> list[Unanswered]:
    """The unanswered questions grouped by their text (case and blanks ignored) and site, most asked
    first, then most recent; at most *limit* (one grouped SQL query)."""
    count = func.count(FaqUnanswered.id)
    last = func.max(FaqUnanswered.created_at)
    rows = session.execute(
        select(FaqUnanswered.question_key, FaqUnanswered.site_id, ChatSite.name, func.min(FaqUnanswered.question),
               count, last)
        .join(ChatSite, ChatSite.id == FaqUnanswered.site_id)
        .group_by(FaqUnanswered.question_key, FaqUnanswered.site_id, ChatSite.name)
        .order_by(count.desc(), last.desc(), FaqUnanswered.question_key).limit(limit)).all()
    return [Unanswered(row[3], row[1], row[2], int(row[4]), row[5]) for row in rows]

