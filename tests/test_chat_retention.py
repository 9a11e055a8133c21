"""``flask --app app chat-retention``: old visitor addresses truncated, old closed chats of
unidentified visitors anonymised (个人信息保护法), identified visitors untouched, idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models.base import utcnow
from app.models.chat import (
    ChatMessage,
    ChatSite,
    Conversation,
    ConversationStatus,
    LeaveMessage,
    SenderType,
    Visitor,
)
from app.models.security import AuditLog
from app.services import chat_sites
from app.services.chat_retention import ANONYMISED


@pytest.fixture
def world(app):
    """Two visitors last here 200 days ago — one anonymous, one a verified user — and a recent one."""
    site = chat_sites.prepare_new_site(ChatSite(name="留存站点", allowed_origins="https://www.example.com"))
    db.session.add(site)
    db.session.flush()
    old = utcnow() - timedelta(days=200)
    recent = utcnow() - timedelta(days=5)
    made = {}
    for key, seen, fields in [("anonymous", old, {}), ("identified", old, {"external_user_id": "u-9"}),
                              ("recent", recent, {})]:
        visitor = Visitor(site_id=site.id, uid=f"uid-{key}", first_seen_at=seen, last_seen_at=seen,
                          ip="203.0.113.77", name=f"{key}-张三", email=f"{key}@example.com", phone="13800138000",
                          **fields)
        db.session.add(visitor)
        db.session.flush()
        conversation = Conversation(site_id=site.id, visitor_id=visitor.id, status=ConversationStatus.closed,
                                    queued_at=seen, closed_at=seen, rating=4, rating_comment="服务很好，我是张三",
                                    transcript_email=f"{key}@example.com")
        db.session.add(conversation)
        db.session.flush()
        db.session.add_all([
            ChatMessage(conversation_id=conversation.id, sender_type=SenderType.visitor, text="我的手机是13800138000",
                        created_at=seen),
            ChatMessage(conversation_id=conversation.id, sender_type=SenderType.agent, text="好的，稍后联系您",
                        created_at=seen),
            LeaveMessage(site_id=site.id, visitor_id=visitor.id, name="张三", phone="13800138000",
                         email="zs@example.com", text="请回电", created_at=seen),
        ])
        made[key] = (visitor.id, conversation.id)
    db.session.commit()
    return made


def _run(app, *args: str):
    result = app.test_cli_runner().invoke(args=["chat-retention", *args])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    return result.output


def _state(world, key: str) -> tuple:
    visitor_id, conversation_id = world[key]
    visitor = db.session.get(Visitor, visitor_id)
    conversation = db.session.get(Conversation, conversation_id)
    texts = tuple(db.session.scalars(select(ChatMessage.text).where(ChatMessage.conversation_id == conversation_id)
                                     .order_by(ChatMessage.id)))
    left = db.session.scalar(select(LeaveMessage).where(LeaveMessage.visitor_id == visitor_id))
    return (visitor.ip, visitor.name, visitor.email, visitor.phone, visitor.anonymised_at is not None,
            conversation.rating, conversation.rating_comment, conversation.transcript_email, texts,
            left.name, left.phone, left.email, left.text)


def _audit_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "chat_retention"))


def test_a_dry_run_counts_and_changes_nothing(app, world):
    before = {key: _state(world, key) for key in world}
    output = _run(app, "--days", "180", "--dry-run")
    assert "dry run" in output and "addresses truncated: 2" in output and "conversations anonymised: 1 " in output
    assert {key: _state(world, key) for key in world} == before
    assert _audit_rows() == 0


def test_retention_anonymises_old_chats_of_unidentified_visitors_only_and_a_second_run_is_a_no_op(app, world):
    identified_before = _state(world, "identified")
    recent_before = _state(world, "recent")
    output = _run(app)  # CHAT_RETENTION_DAYS, 180 by default
    assert "conversations anonymised: 1 (1 messages)" in output and "visitors anonymised: 1" in output
    assert _state(world, "anonymous") == (
        "203.0.113.0", None, None, None, True, 4, None, None, (ANONYMISED, "好的，稍后联系您"),
        ANONYMISED, ANONYMISED, None, "请回电")
    # the verified user keeps everything but the full address; the recent visitor keeps everything
    assert _state(world, "identified") == ("203.0.113.0",) + identified_before[1:]
    assert _state(world, "recent") == recent_before
    assert _audit_rows() == 1
    # the audit trail does not copy the erased details
    changes = db.session.scalar(select(AuditLog.changes).where(AuditLog.action == "chat_retention"))
    assert "张三" not in changes and "13800138000" not in changes

    after = {key: _state(world, key) for key in world}
    again = _run(app)
    assert "addresses truncated: 0" in again and "conversations anonymised: 0" in again
    assert "visitors anonymised: 0" in again and "left messages anonymised: 0" in again
    assert {key: _state(world, key) for key in world} == after
    assert _audit_rows() == 1


def test_a_shorter_retention_reaches_recent_visitors_too(app, world):
    _run(app, "--days", "1")
    assert _state(world, "recent")[:2] == ("203.0.113.0", None)


def test_a_negative_number_of_days_is_refused(app, world):
    result = app.test_cli_runner().invoke(args=["chat-retention", "--days", "-3"])
    assert result.exit_code != 0
    db.session.expire_all()
    assert _state(world, "anonymous")[0] == "203.0.113.77"
