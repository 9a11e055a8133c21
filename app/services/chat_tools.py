"""An agent's chat tools: canned replies (快捷回复) and invitations of browsing visitors (主动邀请).

Rules:
- A canned reply is personal (``owner_id``, seen and edited only by its owner) or shared (blank
  owner, seen by every agent, edited by users allowed to share). Its shortcut is 1 to 30 letters,
  digits, ``_`` or ``-`` (typed with a leading slash, stored without), unique among the owner's
  replies or among the shared ones (case-insensitive). Typing ``/shortcut`` at the start of a
  message expands it; a personal reply wins over a shared one with the same shortcut.
- An invitation rule belongs to a site and has a message of 1 to 500 characters; every condition
  that is set must hold (blank means any): seconds on the current page, the page address (glob),
  the referrer (glob), the search keyword (contains), returning visitor, page views in this visit.
  Active rules are tried by priority (lowest first); each rule invites a visitor at most once per
  visit, and nobody is invited while they have an open conversation. Time on the page counts the
  seconds heartbeats credited plus those since the last beat (at most ``tracking.BEAT_SLACK``), so
  a rule of "30 s on the page" fires at 30 s: checked on every page view and heartbeat, and by the
  sweep (``timed_invitations``) between beats, which come every 15 s.
- An agent may invite (manually) an online visitor of a site they serve, with 1 to 500 characters
  of text or the default text. A visitor answers only their own invitations, once.
- One-click block (屏蔽): the agent who owns a conversation blocks its visitor on its site, for good
  (an Admin lifts or limits it on the blocked visitors screen), with an optional reason of up to
  500 characters; the conversation is closed with it. Blocking a visitor already blocked there
  adds no second block.
Every function that writes commits its own transaction. Errors: ``ValidationFailed`` (bad input),
``AccessDenied``, ``NotFound``, ``Conflict``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import (
    AgentProfile,
    CannedReply,
    ChatBlock,
    ChatInvitation,
    ChatSite,
    Conversation,
    ConversationStatus,
    InvitationRule,
    InvitationStatus,
    PageView,
    Visitor,
)
from app.services import chat, routing, tracking
from app.services.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from app.services.locking import write_lock

SHORTCUT = re.compile(r"[\w-]{1,30}")  # letters (any script), digits, _ and -
MAX_REPLY_TEXT = 5000
MAX_INVITATION_TEXT = 500
MAX_PATTERN = 500
MAX_KEYWORD = 200
SEARCH_LIMIT = 50
MAX_BLOCK_REASON = 500


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- canned replies ---------------------------------------------------------------------------


def validate_canned_reply(session: Session, reply: CannedReply) -> None:
    """Check and tidy a canned reply before it is stored (does not commit).

    The shortcut loses a leading slash and surrounding blanks; it must be 1–30 letters, digits,
    ``_`` or ``-`` and unique among the owner's replies (or among the shared ones). The text is
    1–5000 characters, the title at most 100, the category at most 50.
    Raises ``ValidationFailed`` with every problem found.
    """
    errors: dict[str, list[str]] = {}
    shortcut = (reply.shortcut or "").strip()
    shortcut = shortcut[1:] if shortcut.startswith("/") else shortcut
    reply.shortcut = shortcut
    reply.title = (reply.title or "").strip() or None
    reply.category = (reply.category or "").strip() or None
    reply.text = (reply.text or "").strip()
    if not SHORTCUT.fullmatch(shortcut):
        errors["shortcut"] = [str(_l("A shortcut is 1 to 30 letters, digits, _ or - (no slash or space)."))]
    if not reply.text:
        errors["text"] = [str(_l("A canned reply needs some text."))]
    elif len(reply.text) > MAX_REPLY_TEXT:
        errors["text"] = [str(_l("At most %(n)d characters.", n=MAX_REPLY_TEXT))]
    if reply.title and len(reply.title) > 100:
        errors["title"] = [str(_l("At most %(n)d characters.", n=100))]
    if reply.category and len(reply.category) > 50:
        errors["category"] = [str(_l("At most %(n)d characters.", n=50))]
    if "shortcut" not in errors:
        with session.no_autoflush:
            query = select(CannedReply.id).where(func.lower(CannedReply.shortcut) == shortcut.lower())
            query = query.where(CannedReply.owner_id.is_(None) if reply.owner_id is None
                                else CannedReply.owner_id == reply.owner_id)
            if reply.id is not None:
                query = query.where(CannedReply.id != reply.id)
            if session.scalar(query) is not None:
                errors["shortcut"] = [str(_l("The shortcut /%(s)s is already taken.", s=shortcut))]
    if errors:
        raise ValidationFailed(errors)


def may_edit_reply(reply: CannedReply, user_id: int | None, can_share: bool) -> bool:
    """Users who may share edit every reply; others only their own personal ones."""
    return can_share or (user_id is not None and reply.owner_id == user_id)


def assign_owner(reply: CannedReply, user_id: int | None, can_share: bool, shared: bool) -> None:
    """Decide whose a reply being saved is: shared (blank owner) only for users who may share;
    otherwise the reply stays personal (a new one belongs to *user_id*).

    Raises ``AccessDenied`` when a user who may not share asks for a shared reply.
    """
    if shared:
        if not can_share:
            raise AccessDenied({"shared": [str(_l("Only a manager can share a canned reply."))]})
        reply.owner_id = None
    elif reply.owner_id is None:
        reply.owner_id = user_id


def visible_replies_query(user_id: int | None):  # noqa: ANN201
    """The replies a user sees: their personal ones and the shared ones."""
    return or_(CannedReply.owner_id.is_(None), CannedReply.owner_id == (user_id or -1))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_replies(session: Session, user_id: int, q: object = None, limit: int = SEARCH_LIMIT) -> list[CannedReply]:
    """The user's personal replies and the shared ones whose shortcut starts with *q* (a leading
    slash is ignored) or whose title or text contains it; all of them without *q*. Personal ones
    first, then by shortcut. Raises ``ValidationFailed`` when *q* is not text of at most 100
    characters."""
    if q is not None and (not isinstance(q, str) or len(q) > 100):
        raise ValidationFailed({"q": [str(_l("At most %(n)d characters.", n=100))]})
    text = (q or "").strip()
    text = text[1:] if text.startswith("/") else text
    query = select(CannedReply).where(visible_replies_query(user_id))
    if text:
        prefix = _like(text.lower())[1:]
        query = query.where(or_(func.lower(CannedReply.shortcut).like(prefix, escape="\\"),
                                func.lower(CannedReply.title).like(_like(text.lower()), escape="\\"),
                                func.lower(CannedReply.text).like(_like(text.lower()), escape="\\")))
    query = query.order_by(CannedReply.owner_id.is_(None), CannedReply.shortcut, CannedReply.id).limit(limit)
    return list(session.scalars(query))


def reply_payload(reply: CannedReply) -> dict:
    """A canned reply as the console receives it (``shared``: blank owner)."""
    return {"id": reply.id, "shortcut": reply.shortcut, "title": reply.title, "text": reply.text,
            "category": reply.category, "shared": reply.owner_id is None}


def expand(session: Session, user_id: int, text: str) -> str:
    """Expand a leading ``/shortcut`` in *text* to the reply's text (the rest of the message is kept
    after it). The user's personal reply wins over a shared one; an unknown shortcut or text without
    a leading slash is returned unchanged."""
    if not isinstance(text, str) or not text.startswith("/"):
        return text
    head, sep, rest = text[1:].partition(" ")
    if not SHORTCUT.fullmatch(head):
        return text
    replies = session.scalars(select(CannedReply).where(
        visible_replies_query(user_id), func.lower(CannedReply.shortcut) == head.lower())).all()
    if not replies:
        return text
    reply = sorted(replies, key=lambda r: r.owner_id is None)[0]
    return reply.text + (" " + rest if sep and rest else "")


# --- invitation rules -------------------------------------------------------------------------


def _bad_glob(pattern: str | None, limit: int) -> bool:
    return pattern is not None and (len(pattern) > limit or any(ord(c) < 32 and c not in "\n\r" for c in pattern))


def validate_rule(rule: InvitationRule) -> None:
    """Check and tidy an invitation rule before it is stored (does not commit).

    A site is required; the name is 1–100 characters, the message 1–500; numbers are whole and not
    negative; the URL and referrer patterns are globs (``*`` and ``?``, one per line) of at most 500
    characters, the keyword at most 200. Raises ``ValidationFailed`` with every problem found.
    """
    errors: dict[str, list[str]] = {}
    rule.name = (rule.name or "").strip()
    rule.message = (rule.message or "").strip()
    for field in ("url_pattern", "referrer_pattern", "keyword_pattern"):
        setattr(rule, field, (getattr(rule, field) or "").strip() or None)
    if rule.site_id is None and getattr(rule, "site", None) is None:
        errors["site"] = [str(_l("Choose the site."))]
    if not rule.name or len(rule.name) > 100:
        errors["name"] = [str(_l("A name of 1 to %(n)d characters.", n=100))]
    if not rule.message or len(rule.message) > MAX_INVITATION_TEXT:
        errors["message"] = [str(_l("A message of 1 to %(n)d characters.", n=MAX_INVITATION_TEXT))]
    for field in ("min_seconds_on_page", "min_page_views", "priority"):
        value = getattr(rule, field)
        if value is not None and (not _is_int(value) or value < 0):
            errors[field] = [str(_l("A whole number, 0 or more."))]
    if rule.priority is None:
        rule.priority = 100
    if _bad_glob(rule.url_pattern, MAX_PATTERN):
        errors["url_pattern"] = [str(_l("Patterns of at most %(n)d characters.", n=MAX_PATTERN))]
    if _bad_glob(rule.referrer_pattern, MAX_PATTERN):
        errors["referrer_pattern"] = [str(_l("Patterns of at most %(n)d characters.", n=MAX_PATTERN))]
    if _bad_glob(rule.keyword_pattern, MAX_KEYWORD):
        errors["keyword_pattern"] = [str(_l("At most %(n)d characters.", n=MAX_KEYWORD))]
    if errors:
        raise ValidationFailed(errors)


def _glob_match(patterns: str, value: str | None) -> bool:
    if not value:
        return False
    value = value.lower()
    return any(fnmatchcase(value, p.strip().lower()) for p in patterns.splitlines() if p.strip())


@dataclass(frozen=True)
class Browsing:
    """What the rules look at: the visitor and where they are in this visit."""

    visitor: Visitor
    page: PageView
    landing: PageView | None  # the first page of this visit (where the referrer and keyword came from)
    page_views: int  # pages opened in this visit
    seconds: float = 0.0  # time on the page so far (``tracking.seconds_on_page``)


def rule_matches(rule: InvitationRule, browsing: Browsing) -> bool:
    """Whether every condition the rule sets holds (a blank condition holds for anyone). The
    referrer and keyword are those of the current page or of the visit's landing page."""
    page, visitor = browsing.page, browsing.visitor
    if rule.min_seconds_on_page is not None and browsing.seconds < rule.min_seconds_on_page:
        return False
    if rule.url_pattern and not _glob_match(rule.url_pattern, page.url):
        return False
    pages = [p for p in (page, browsing.landing) if p is not None]
    if rule.referrer_pattern and not any(_glob_match(rule.referrer_pattern, p.referrer) for p in pages):
        return False
    if rule.keyword_pattern and not any(
            p.keyword and rule.keyword_pattern.lower() in p.keyword.lower() for p in pages):
        return False
    if rule.returning_only and visitor.visits <= 1:
        return False
    return rule.min_page_views is None or browsing.page_views >= rule.min_page_views


def _browsing(session: Session, visitor: Visitor, page: PageView, now: datetime) -> Browsing:
    visit = page.visit_no
    landing = session.scalar(select(PageView).where(PageView.visitor_id == visitor.id, PageView.visit_no == visit)
                             .order_by(PageView.started_at, PageView.id).limit(1))
    count = session.scalar(select(func.count()).select_from(PageView).where(
        PageView.visitor_id == visitor.id, PageView.visit_no == visit)) or 0
    return Browsing(visitor, page, landing, count, tracking.seconds_on_page(page, now))


def matching_rule(session: Session, visitor_id: int, page_view_id: int | None,
                  now: datetime | None = None) -> InvitationRule | None:
    """The first active rule of the visitor's site (by priority) that the visitor meets on the page
    view at *now* and that has not invited them in this visit yet; ``None`` while the visitor has an
    open conversation, when the page view is not theirs, or when no rule fits."""
    visitor = session.get(Visitor, visitor_id) if _is_int(visitor_id) else None
    page = session.get(PageView, page_view_id) if _is_int(page_view_id) else None
    if visitor is None or page is None or page.visitor_id != visitor.id:
        return None
    if chat.open_conversation(session, visitor) is not None:
        return None
    rules = session.scalars(select(InvitationRule).where(
        InvitationRule.site_id == visitor.site_id, InvitationRule.active.is_(True))
        .order_by(InvitationRule.priority, InvitationRule.id)).all()
    if not rules:
        return None
    used = set(session.scalars(select(ChatInvitation.rule_id).where(
        ChatInvitation.visitor_id == visitor.id, ChatInvitation.visit_no == page.visit_no,
        ChatInvitation.rule_id.is_not(None))))
    browsing = _browsing(session, visitor, page, now or utcnow())
    return next((r for r in rules if r.id not in used and rule_matches(r, browsing)), None)


def invite_by_rule(session: Session, visitor_id: int, page_view_id: int | None,
                   now: datetime | None = None) -> ChatInvitation | None:
    """Store the invitation of the first rule the visitor now meets (see ``matching_rule``), or
    return ``None``. A second process inviting for the same rule and visit at the same moment is
    stopped by the unique constraint: that call returns ``None``. Commits."""
    now = now or utcnow()
    rule = matching_rule(session, visitor_id, page_view_id, now)
    if rule is None:
        return None
    page = session.get(PageView, page_view_id)
    invitation = ChatInvitation(visitor_id=visitor_id, visit_no=page.visit_no, rule_id=rule.id, text=rule.message,
                                status=InvitationStatus.sent, created_at=now)
    session.add(invitation)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return invitation


def timed_invitations(session: Session, now: datetime | None = None) -> list[ChatInvitation]:
    """The sweep's part of the rules: invite the online visitors whose time on a page they are
    viewing (seen within ``tracking.BEAT_SLACK``) has just reached a rule's ``min_seconds_on_page``
    (within ``BEAT_SLACK`` of it: later ones were checked by their heartbeats). Returns the
    invitations stored. Commits."""
    now = now or utcnow()
    thresholds = sorted(set(session.scalars(select(InvitationRule.min_seconds_on_page).where(
        InvitationRule.active.is_(True), InvitationRule.min_seconds_on_page > 0))))
    if not thresholds:
        return []
    slack = tracking.BEAT_SLACK
    near = or_(*(PageView.seconds.between(max(0, seconds - slack), seconds + slack) for seconds in thresholds))
    candidates = session.execute(select(PageView.visitor_id, PageView.id).join(
        Visitor, Visitor.id == PageView.visitor_id).where(
        Visitor.online.is_(True), PageView.visit_no == Visitor.visits, near,
        PageView.last_seen_at >= now - timedelta(seconds=slack))
        .order_by(PageView.id)).all()
    session.commit()  # ends the read transaction
    invited = []
    for visitor_id, page_view_id in candidates:
        invitation = invite_by_rule(session, visitor_id, page_view_id, now)
        if invitation is not None:
            invited.append(invitation)
    return invited


# --- manual invitations and answers -----------------------------------------------------------


def default_invitation_text(site: ChatSite) -> str:
    return site.welcome_text or str(_l("Hello! Can we help you with anything?"))


def invite_manually(session: Session, agent: AgentProfile | None, visitor_id: object, text: object = None,
                    now: datetime | None = None) -> ChatInvitation:
    """An agent invites a browsing visitor (主动邀请) with *text* (blank: the site's welcome text or a
    default). The visitor must be online on a site the agent serves and not already chatting.

    Raises ``ValidationFailed`` (bad visitor id or text), ``AccessDenied`` (no active agent
    profile), ``NotFound`` (no such visitor, or one of a site the agent does not serve) and
    ``Conflict`` (visitor offline or already in a conversation). Commits.
    """
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
    errors: dict[str, list[str]] = {}
    if not _is_int(visitor_id):
        errors["visitor_id"] = [str(_l("visitor_id is a whole number."))]
    if text is not None and (not isinstance(text, str) or len(text.strip()) > MAX_INVITATION_TEXT):
        errors["text"] = [str(_l("A message of 1 to %(n)d characters.", n=MAX_INVITATION_TEXT))]
    if errors:
        raise ValidationFailed(errors)
    visitor = session.get(Visitor, visitor_id)
    if visitor is None or visitor.site_id not in routing.agent_site_ids(session, agent):
        raise NotFound({"visitor_id": [str(_l("No such visitor."))]})
    if not visitor.online:
        raise Conflict({"visitor_id": [str(_l("The visitor has left the website."))]})
    if chat.open_conversation(session, visitor) is not None:
        raise Conflict({"visitor_id": [str(_l("The visitor is already in a conversation."))]})
    text = (text or "").strip() or default_invitation_text(visitor.site)
    invitation = ChatInvitation(visitor_id=visitor.id, visit_no=visitor.visits, agent_id=agent.id,
                                text=text[:MAX_INVITATION_TEXT], status=InvitationStatus.sent,
                                created_at=now or utcnow())
    session.add(invitation)
    session.commit()
    return invitation


def respond(session: Session, visitor_id: int | None, invitation_id: object, accepted: object,
            now: datetime | None = None) -> ChatInvitation:
    """The visitor accepts or declines one of their own invitations. Answering again the same way
    changes nothing.

    Raises ``ValidationFailed`` (the id is not a whole number, *accepted* not true or false),
    ``NotFound`` (no such invitation for this visitor) and ``Conflict`` (already answered the other
    way). Commits.
    """
    errors: dict[str, list[str]] = {}
    if not _is_int(invitation_id):
        errors["invitation_id"] = [str(_l("invitation_id is a whole number."))]
    if not isinstance(accepted, bool):
        errors["accepted"] = [str(_l("accepted is true or false."))]
    if errors:
        raise ValidationFailed(errors)
    invitation = session.get(ChatInvitation, invitation_id)
    if invitation is None or visitor_id is None or invitation.visitor_id != visitor_id:
        raise NotFound({"invitation_id": [str(_l("No such invitation."))]})
    status = InvitationStatus.accepted if accepted else InvitationStatus.declined
    if invitation.status == status:
        return invitation
    if invitation.status != InvitationStatus.sent:
        raise Conflict({"invitation_id": [str(_l("This invitation was already answered."))]})
    invitation.status, invitation.responded_at = status, now or utcnow()
    session.commit()
    return invitation


def invitation_payload(session: Session, invitation: ChatInvitation) -> dict:
    """The ``invite`` event for the visitor: ``agent_name`` is the inviting agent's display name
    (``None`` for an automatic invitation)."""
    agent = session.get(AgentProfile, invitation.agent_id) if invitation.agent_id else None
    return {"invitation_id": invitation.id, "text": invitation.text,
            "agent_name": agent.display_name if agent else None}


def invited_payload(session: Session, invitation: ChatInvitation) -> dict:
    """The ``visitor_invited`` event for the site's agents."""
    rule = session.get(InvitationRule, invitation.rule_id) if invitation.rule_id else None
    return {**invitation_payload(session, invitation), "visitor_id": invitation.visitor_id,
            "rule_id": invitation.rule_id, "rule_name": rule.name if rule else None,
            "agent_id": invitation.agent_id}


def block_from_chat(session: Session, agent: AgentProfile | None, conversation_id: object,
                    reason: object = None, now: datetime | None = None) -> tuple[Conversation, ChatBlock]:
    """The agent who owns the conversation blocks its visitor on its site and the conversation is
    closed (see the module rules). Commits once. Raises ``AccessDenied`` (no active agent profile,
    or not their conversation), ``NotFound``, ``ValidationFailed`` (the reason) and then writes
    nothing."""
    if agent is None or not agent.active:
        raise AccessDenied({"_": [str(_l("You have no active agent profile."))]})
    if reason is not None and not isinstance(reason, str):
        raise ValidationFailed({"reason": [str(_l("Give the reason as text."))]})
    reason = (reason or "").strip()
    if len(reason) > MAX_BLOCK_REASON:
        raise ValidationFailed({"reason": [str(_l("At most %(n)d characters.", n=MAX_BLOCK_REASON))]})
    conversation = chat.get_conversation(session, conversation_id)
    if conversation.agent_id != agent.id:
        raise AccessDenied({"conversation_id": [str(_l("This is not your conversation."))]})
    now = now or utcnow()
    visitor = session.get(Visitor, conversation.visitor_id)
    # one block per visitor however often (or from however many tabs) it is clicked at once
    write_lock(session, Visitor, Visitor.id, visitor.id, Visitor.site_id)
    session.refresh(conversation)  # as the click before this one may have left it
    block = session.scalar(select(ChatBlock).where(
        ChatBlock.site_id == conversation.site_id, ChatBlock.visitor_uid == visitor.uid,
        or_(ChatBlock.expires_at.is_(None), ChatBlock.expires_at > now)))
    if block is None:
        block = ChatBlock(site_id=conversation.site_id, visitor_uid=visitor.uid, created_by_id=agent.user_id,
                          reason=reason or str(_l("Blocked from the chat by %(agent)s.", agent=agent.display_name)))
        session.add(block)
        session.flush()
    if conversation.status == ConversationStatus.closed:  # blocked after the chat ended
        session.commit()
        return conversation, block
    return chat.close(session, conversation.id, agent=agent), block  # (commits the block with the close)
