"""Agents working together on ``/agent``: transfer to an agent or a group, a second agent invited
into a chat, a supervisor watching and whispering, and the team room (群组沟通)."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from app.extensions import db, socketio
from app.models.chat import (
    AgentGroup,
    AgentProfile,
    AgentStatus,
    ChatMessage,
    ChatSite,
    ChatTransfer,
    Conversation,
    ConversationParticipant,
    ConversationStatus,
    ParticipantRole,
    SenderType,
    TeamMessage,
)
from app.models.security import AuditLog
from app.services import chat_sites
from app.sockets.fanout import fanout
from tests.conftest import PASSWORD
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"


# --- fixtures and helpers -------------------------------------------------------------------


def _site(name: str) -> ChatSite:
    site = chat_sites.prepare_new_site(ChatSite(name=name, allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.flush()
    return site


# The demo password with a single hashing round: signing in (three users per test) stays fast.
QUICK_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")


def _add_agent_user(app, username: str) -> None:
    sm = app.appbuilder.sm
    assert sm.add_user(username, username, "-", f"{username}@example.invalid", [sm.find_role("Agent")],
                       hashed_password=QUICK_HASH)


@pytest.fixture
def team(app, user_id):
    """Two sites; on the first a 售前 group with agents 小张 (agent) and 小李 (agent2), a 税务 group
    with 小李, and the supervisor 王主管 (manager) with a profile; 小赵 (agent3) serves only the
    second site. Everyone is signed in (online) but 小张's chats come from the queue."""
    for username in ("agent", "manager"):
        app.appbuilder.sm.find_user(username=username).password = QUICK_HASH
    _add_agent_user(app, "agent2")
    _add_agent_user(app, "agent3")
    site, other_site = _site("演示站点"), _site("另一个站点")
    presales = AgentGroup(site_id=site.id, name="售前", is_default=True)
    tax = AgentGroup(site_id=site.id, name="税务")
    elsewhere = AgentGroup(site_id=other_site.id, name="别处")
    zhang = AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=3, status=AgentStatus.online)
    li = AgentProfile(user_id=user_id("agent2"), display_name="客服小李", max_chats=2, status=AgentStatus.online)
    zhao = AgentProfile(user_id=user_id("agent3"), display_name="客服小赵", max_chats=2, status=AgentStatus.online)
    boss = AgentProfile(user_id=user_id("manager"), display_name="王主管", max_chats=2, status=AgentStatus.online)
    presales.agents = [zhang, li]
    tax.agents = [li]
    elsewhere.agents = [zhao]
    db.session.add_all([presales, tax, elsewhere, zhang, li, zhao, boss])
    db.session.commit()
    return {"site": site, "other_site": other_site, "presales": presales, "tax": tax, "elsewhere": elsewhere,
            "zhang": zhang, "li": li, "zhao": zhao, "boss": boss}


def _visitor(app, site, **auth):
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN},
                             auth={"site_key": site.site_key, **auth}, flask_test_client=app.test_client())


def _console(app, login_as, username):
    client = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as(username))
    assert client.is_connected("/agent"), username
    return client


def _send(client, event, payload=None, namespace="/agent"):
    return client.emit(event, payload if payload is not None else {}, namespace=namespace, callback=True)


def _inbox(client, namespace: str) -> list:
    """Events received by *client* and not yet looked at (each test helper takes only what it asks for)."""
    box = client.__dict__.setdefault("_inbox", {}).setdefault(namespace, [])
    box.extend(client.get_received(namespace))
    return box


def _clear(client, namespace="/agent") -> None:
    _inbox(client, namespace).clear()


def _events(client, name, namespace="/agent", wait=1.0) -> list:
    """The payloads of the *name* events received so far (waiting up to *wait* seconds for one)."""
    deadline = time.monotonic() + wait
    while True:
        box = _inbox(client, namespace)
        found = [e for e in box if e["name"] == name]
        if found or time.monotonic() > deadline:
            box[:] = [e for e in box if e["name"] != name]
            # (the test client keeps a "message" event's payload as is, other events' as a list)
            return [e["args"] if name == "message" else e["args"][0] for e in found]
        time.sleep(0.05)


def _none_of(client, name, namespace="/agent") -> list:
    """The *name* events received so far, without waiting (for asserting that none came)."""
    return _events(client, name, namespace, 0)


def _count(model, *where) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _conversation(conversation_id: int) -> Conversation:
    db.session.expire_all()
    return db.session.get(Conversation, conversation_id)


def _served_chat(app, site, owner, text="你好，想咨询代账"):
    """A visitor's chat accepted by the *owner* console; returns (visitor client, conversation id)."""
    visitor = _visitor(app, site)
    ack = _send(visitor, "message", {"client_msg_id": "v1", "text": text}, "/visitor")
    assert fanout.idle()  # the chat was routed (right after the ack) before the owner takes it
    accepted = _send(owner, "accept", {"conversation_id": ack["conversation_id"]})
    assert "messages" in accepted, accepted
    assert fanout.idle()
    _clear(visitor, "/visitor")
    _clear(owner, "/agent")
    return visitor, ack["conversation_id"]


def _say(client, conversation_id, msg_id, text, **extra):
    return _send(client, "message", {"conversation_id": conversation_id, "client_msg_id": msg_id, "text": text,
                                     **extra})


def _texts(messages) -> list[str]:
    return [m["text"] for m in messages]


# --- transfer -------------------------------------------------------------------------------


def test_transfer_to_an_agent_makes_them_the_owner_and_tells_the_visitor(app, team, login_as):
    zhang, li = _console(app, login_as, "agent"), _console(app, login_as, "agent2")
    visitor, cid = _served_chat(app, team["site"], zhang)
    ack = _send(zhang, "transfer", {"conversation_id": cid, "to_agent_id": team["li"].id,
                                    "note": "客户要开专票，请跟进"})
    assert ack["ok"] is True and ack["status"] == "active"

    conversation = _conversation(cid)
    assert (conversation.agent_id, conversation.status) == (team["li"].id, ConversationStatus.active)
    [told] = _events(visitor, "transferred", "/visitor")
    assert told == {"conversation_id": cid, "name": "客服小李"}
    seen_by_visitor = _events(visitor, "message", "/visitor")
    assert [m["sender_type"] for m in seen_by_visitor] == ["system"]
    assert "客服小李" in seen_by_visitor[0]["text"]
    assert "专票" not in json.dumps(seen_by_visitor, ensure_ascii=False)  # the note is for agents only

    [handed] = _events(li, "transferred")
    assert (handed["from_name"], handed["note"], handed["name"]) == ("客服小张", "客户要开专票，请跟进", "客服小李")
    assert {m["sender_type"] for m in _events(li, "message")} == {"system", "note"}
    transfer = db.session.scalar(select(ChatTransfer))
    assert (transfer.from_agent_id, transfer.to_agent_id, transfer.note) == (
        team["zhang"].id, team["li"].id, "客户要开专票，请跟进")
    audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "chat_transfer"))
    assert audit.username == "agent" and audit.object_id == str(cid)
    assert json.loads(audit.changes)["agent_id"] == [team["zhang"].id, team["li"].id]

    # The new owner writes and the visitor hears it; the old owner no longer can, nor hears the chat.
    _clear(zhang, "/agent")
    assert "id" in _say(li, cid, "r1", "您好，我是小李")
    assert _texts(_events(visitor, "message", "/visitor")) == ["您好，我是小李"]
    assert "error" in _say(zhang, cid, "r2", "我还在")
    assert _count(ChatMessage, ChatMessage.client_msg_id == "r2") == 0
    _send(visitor, "message", {"client_msg_id": "v2", "text": "好的"}, "/visitor")
    assert _texts(_events(li, "message")) == ["好的"]
    assert _none_of(zhang, "message") == []
    # Resuming never shows the visitor the note.
    _clear(visitor, "/visitor")
    _send(visitor, "resume", {"last_message_id": 0}, "/visitor")
    assert {m["sender_type"] for m in _events(visitor, "message", "/visitor")} <= {"visitor", "agent", "system"}


def test_transfer_to_a_group_puts_the_chat_back_in_the_queue(app, team, login_as):
    zhang = _console(app, login_as, "agent")
    visitor, cid = _served_chat(app, team["site"], zhang)
    queued_at = _conversation(cid).queued_at
    team["li"].status = AgentStatus.offline  # nobody else is there to take it straight away
    db.session.commit()
    ack = _send(zhang, "transfer", {"conversation_id": cid, "to_group_id": team["tax"].id})
    assert ack["ok"] is True and ack["status"] == "queued"

    conversation = _conversation(cid)
    assert (conversation.status, conversation.agent_id, conversation.group_id) == (
        ConversationStatus.queued, None, team["tax"].id)
    assert conversation.queued_at == queued_at  # keeps its place in the line
    assert _events(visitor, "transferred", "/visitor") == [{"conversation_id": cid, "name": "税务"}]
    [queue] = _events(visitor, "queue", "/visitor")
    assert (queue["conversation_id"], queue["position"]) == (cid, 1)
    assert {"conversation_id": cid, "status": "queued", "position": 1} in _events(zhang, "queue_update")
    assert "error" in _say(zhang, cid, "r1", "还是我")
    transfer = db.session.scalar(select(ChatTransfer))
    assert (transfer.to_group_id, transfer.to_agent_id, transfer.note) == (team["tax"].id, None, None)
    assert _count(ChatMessage, ChatMessage.sender_type == SenderType.note) == 0


def test_a_chat_transferred_to_a_group_is_offered_to_its_available_agent(app, team, login_as):
    zhang, li = _console(app, login_as, "agent"), _console(app, login_as, "agent2")
    _visitor_client, cid = _served_chat(app, team["site"], zhang)
    assert _send(zhang, "transfer", {"conversation_id": cid, "to_group_id": team["presales"].id})["ok"] is True
    [offer] = _events(li, "chat_offer")
    assert offer["conversation_id"] == cid
    assert _none_of(zhang, "chat_offer") == []  # never straight back to the agent who handed it on
    conversation = _conversation(cid)
    assert (conversation.status, conversation.agent_id) == (ConversationStatus.offered, team["li"].id)
    assert _texts(_send(li, "accept", {"conversation_id": cid})["messages"])[0] == "你好，想咨询代账"


def test_only_the_owner_or_a_supervisor_transfers(app, team, login_as):
    zhang, li = _console(app, login_as, "agent"), _console(app, login_as, "agent2")
    _visitor_client, cid = _served_chat(app, team["site"], zhang)
    refused = _send(li, "transfer", {"conversation_id": cid, "to_agent_id": team["li"].id})
    assert "error" in refused and _events(li, "error")[0]["event"] == "transfer"
    assert _conversation(cid).agent_id == team["zhang"].id and _count(ChatTransfer) == 0

    boss = _console(app, login_as, "manager")
    assert _send(boss, "transfer", {"conversation_id": cid, "to_agent_id": team["li"].id})["ok"] is True
    assert _conversation(cid).agent_id == team["li"].id
    assert db.session.scalar(select(AuditLog.username).where(AuditLog.action == "chat_transfer")) == "manager"


@pytest.mark.parametrize("case", ["closed", "other site agent", "other site group", "offline agent", "agent at limit",
                                  "to self", "both targets", "no target", "bad id", "long note", "not a dict",
                                  "unknown conversation"])
def test_refused_transfers_change_nothing(app, team, login_as, case):
    zhang = _console(app, login_as, "agent")
    _visitor_client, cid = _served_chat(app, team["site"], zhang)
    payload = {"conversation_id": cid, "to_agent_id": team["li"].id}
    if case == "closed":
        _send(zhang, "close", {"conversation_id": cid})
    elif case == "other site agent":
        payload["to_agent_id"] = team["zhao"].id
    elif case == "other site group":
        payload = {"conversation_id": cid, "to_group_id": team["elsewhere"].id}
    elif case == "offline agent":
        team["li"].status = AgentStatus.offline
    elif case == "agent at limit":
        visitor_id = _conversation(cid).visitor_id
        team["li"].max_chats = 1
        db.session.add(Conversation(site_id=team["site"].id, visitor_id=visitor_id,
                                    agent_id=team["li"].id, status=ConversationStatus.active))
    elif case == "to self":
        payload["to_agent_id"] = team["zhang"].id
    elif case == "both targets":
        payload["to_group_id"] = team["tax"].id
    elif case == "no target":
        del payload["to_agent_id"]
    elif case == "bad id":
        payload["to_agent_id"] = "2"
    elif case == "long note":
        payload["note"] = "长" * 1001
    elif case == "not a dict":
        payload = "transfer please"
    elif case == "unknown conversation":
        payload["conversation_id"] = cid + 1000
    db.session.commit()
    before = (_conversation(cid).agent_id, _conversation(cid).status, _count(ChatMessage))
    ack = _send(zhang, "transfer", payload)
    assert "error" in ack and ack["errors"]
    assert _events(zhang, "error")[-1]["event"] == "transfer"
    assert (_conversation(cid).agent_id, _conversation(cid).status, _count(ChatMessage)) == before
    assert _count(ChatTransfer) == 0
    assert _count(AuditLog, AuditLog.action == "chat_transfer") == 0


# --- a second agent -------------------------------------------------------------------------


def test_an_invited_agent_joins_reads_and_leaves(app, team, login_as):
    zhang, li = _console(app, login_as, "agent"), _console(app, login_as, "agent2")
    visitor, cid = _served_chat(app, team["site"], zhang)
    assert _send(zhang, "invite_agent", {"conversation_id": cid, "agent_id": team["li"].id}) == {"ok": True}
    assert _events(li, "chat_invited") == [{"conversation_id": cid, "by_name": "客服小张"}]

    opened = _send(li, "accept_invite", {"conversation_id": cid})
    # what was said so far, and the line (stored, so a reload shows it) that the invited agent serves too
    assert _texts(opened["messages"]) == ["你好，想咨询代账", "客服小张 为您服务", "客服小李 为您服务"]
    assert _events(zhang, "participant_joined") == [{"conversation_id": cid, "name": "客服小李", "role": "invited"}]
    assert _events(visitor, "agent_joined", "/visitor") == [{"conversation_id": cid, "name": "客服小李"}]
    assert _texts(_events(visitor, "message", "/visitor"))[-1:] == ["客服小李 为您服务"]
    assert _texts(_events(zhang, "message"))[-1:] == ["客服小李 为您服务"]
    _clear(li, "/agent")
    # The invited agent hears the visitor and the owner, and the owner stays the owner.
    _send(visitor, "message", {"client_msg_id": "v2", "text": "税务问题"}, "/visitor")
    _say(zhang, cid, "z1", "我请同事来帮忙")
    assert _texts(_events(li, "message")) == ["税务问题", "我请同事来帮忙"]
    assert _conversation(cid).agent_id == team["zhang"].id

    assert _send(li, "leave", {"conversation_id": cid}) == {"ok": True}
    assert _events(zhang, "participant_left") == [{"conversation_id": cid, "name": "客服小李", "role": "invited"}]
    participant = db.session.scalar(select(ConversationParticipant))
    assert participant.role == ParticipantRole.invited and participant.left_at is not None
    _clear(li, "/agent")
    _clear(zhang, "/agent")
    _send(visitor, "message", {"client_msg_id": "v3", "text": "还在吗"}, "/visitor")
    assert _texts(_events(zhang, "message")) == ["还在吗"]
    assert _none_of(li, "message") == []
    assert "error" in _send(li, "accept_invite", {"conversation_id": cid})  # the invitation is over
    assert "error" in _send(zhang, "leave", {"conversation_id": cid})  # the owner transfers or closes instead


def test_an_invited_agent_writes_to_the_visitor(app, team, login_as):
    zhang, li = _console(app, login_as, "agent"), _console(app, login_as, "agent2")
    visitor, cid = _served_chat(app, team["site"], zhang)
    _send(zhang, "invite_agent", {"conversation_id": cid, "agent_id": team["li"].id})
    _send(li, "accept_invite", {"conversation_id": cid})
    _clear(visitor, "/visitor")
    assert "id" in _say(li, cid, "l1", "专票需要提供开票信息")
    assert _texts(_events(visitor, "message", "/visitor")) == ["专票需要提供开票信息"]
    _send(li, "leave", {"conversation_id": cid})
    assert "error" in _say(li, cid, "l2", "再说一句")
    assert _count(ChatMessage, ChatMessage.client_msg_id == "l2") == 0
    # Invited again, they are back in.
    assert _send(zhang, "invite_agent", {"conversation_id": cid, "agent_id": team["li"].id}) == {"ok": True}
    _send(li, "accept_invite", {"conversation_id": cid})
    assert "id" in _say(li, cid, "l3", "我回来了")
    assert _count(ConversationParticipant) == 1


@pytest.mark.parametrize("case", ["not owner", "other site agent", "the owner", "twice", "offline", "bad id"])
def test_refused_invitations_write_nothing(app, team, login_as, case):
    zhang, li = _console(app, login_as, "agent"), _console(app, login_as, "agent2")
    _visitor_client, cid = _served_chat(app, team["site"], zhang)
    inviter, agent_id = zhang, team["li"].id
    if case == "not owner":
        inviter, agent_id = li, team["zhang"].id
    elif case == "other site agent":
        agent_id = team["zhao"].id
    elif case == "the owner":
        agent_id = team["zhang"].id
    elif case == "twice":
        assert _send(zhang, "invite_agent", {"conversation_id": cid, "agent_id": agent_id}) == {"ok": True}
    elif case == "offline":
        team["li"].status = AgentStatus.offline
        db.session.commit()
    elif case == "bad id":
        agent_id = None
    before = _count(ConversationParticipant)
    ack = _send(inviter, "invite_agent", {"conversation_id": cid, "agent_id": agent_id})
    assert "error" in ack and _events(inviter, "error")[-1]["event"] == "invite_agent"
    assert _count(ConversationParticipant) == before
    if case != "twice":
        assert "error" in _send(li, "accept_invite", {"conversation_id": cid})


# --- supervisors ----------------------------------------------------------------------------


def test_a_supervisor_watches_and_whispers_and_the_visitor_never_sees_it(app, team, login_as):
    zhang = _console(app, login_as, "agent")
    visitor, cid = _served_chat(app, team["site"], zhang)
    _say(zhang, cid, "n1", "老客户，注意语气", note=True)
    boss = _console(app, login_as, "manager")
    watched = _send(boss, "watch", {"conversation_id": cid})
    assert _texts(watched["messages"]) == ["你好，想咨询代账", "客服小张 为您服务", "老客户，注意语气"]
    assert _events(zhang, "participant_joined") == [{"conversation_id": cid, "name": "王主管", "role": "watcher"}]

    # Live: the supervisor reads both sides ...
    _send(visitor, "message", {"client_msg_id": "v2", "text": "报价多少"}, "/visitor")
    _say(zhang, cid, "z1", "每月300元")
    assert _texts(_events(boss, "message")) == ["报价多少", "每月300元"]
    # ... but only reads: writing to the visitor is refused.
    assert "error" in _say(boss, cid, "b1", "我是主管")
    # A whisper reaches the agent and never the visitor.
    _clear(visitor, "/visitor")
    _clear(zhang, "/agent")
    ack = _send(boss, "whisper", {"conversation_id": cid, "client_msg_id": "w1", "text": "可以给八折"})
    assert ack["id"] and ack["client_msg_id"] == "w1"
    [heard] = _events(zhang, "message")
    assert (heard["sender_type"], heard["text"], heard["sender_name"]) == ("whisper", "可以给八折", "王主管")
    assert heard["recipient_user_id"] == team["zhang"].user_id
    stored = db.session.get(ChatMessage, ack["id"])
    assert (stored.sender_type, stored.recipient_user_id) == (SenderType.whisper, team["zhang"].user_id)
    assert _send(boss, "whisper", {"conversation_id": cid, "client_msg_id": "w1", "text": "可以给八折"})["id"] \
        == ack["id"]  # a resend stores nothing new
    assert _count(ChatMessage, ChatMessage.sender_type == SenderType.whisper) == 1
    assert _none_of(visitor, "message", "/visitor") == []
    _send(visitor, "resume", {"last_message_id": 0}, "/visitor")
    resent = _events(visitor, "message", "/visitor")
    assert _texts(resent) == ["你好，想咨询代账", "客服小张 为您服务", "报价多少", "每月300元"]  # no note, no whisper
    assert "八折" not in json.dumps(resent, ensure_ascii=False) and "语气" not in json.dumps(resent, ensure_ascii=False)

    assert _send(boss, "unwatch", {"conversation_id": cid}) == {"ok": True}
    assert _events(zhang, "participant_left") == [{"conversation_id": cid, "name": "王主管", "role": "watcher"}]
    _clear(boss, "/agent")
    _send(visitor, "message", {"client_msg_id": "v3", "text": "好的"}, "/visitor")
    assert _texts(_events(zhang, "message")) == ["好的"]
    assert _none_of(boss, "message") == []


def test_a_supervisor_without_an_agent_profile_watches_and_whispers(app, team, login_as):
    db.session.delete(team["boss"])
    db.session.commit()
    zhang = _console(app, login_as, "agent")
    visitor, cid = _served_chat(app, team["site"], zhang)
    boss = _console(app, login_as, "manager")
    watched = _send(boss, "watch", {"conversation_id": cid})["messages"]
    assert _texts(watched) == ["你好，想咨询代账", "客服小张 为您服务"]
    _send(visitor, "message", {"client_msg_id": "v2", "text": "在吗"}, "/visitor")
    assert _texts(_events(boss, "message")) == ["在吗"]
    assert "id" in _send(boss, "whisper", {"conversation_id": cid, "client_msg_id": "w1", "text": "先核实身份"})
    [heard] = [m for m in _events(zhang, "message") if m["sender_type"] == "whisper"]
    assert (heard["text"], heard["sender_name"]) == ("先核实身份", "manager")
    assert _none_of(visitor, "message", "/visitor") == []
    assert _send(boss, "leave", {"conversation_id": cid}) == {"ok": True}
    assert _count(ConversationParticipant, ConversationParticipant.left_at.is_(None)) == 0


@pytest.mark.parametrize("event", ["watch", "whisper"])
def test_an_agent_without_the_supervise_permission_cannot_watch_or_whisper(app, team, login_as, event):
    zhang, li = _console(app, login_as, "agent"), _console(app, login_as, "agent2")
    _visitor_client, cid = _served_chat(app, team["site"], zhang)
    ack = _send(li, event, {"conversation_id": cid, "client_msg_id": "w1", "text": "偷听"})
    assert "error" in ack and _events(li, "error")[-1]["event"] == event
    assert _count(ConversationParticipant) == 0
    assert _count(ChatMessage, ChatMessage.sender_type == SenderType.whisper) == 0
    _say(zhang, cid, "z1", "仅本人可见")
    assert _none_of(li, "message") == []


@pytest.mark.parametrize("payload", [{"client_msg_id": "w", "text": ""}, {"client_msg_id": "w", "text": "x" * 2001},
                                     {"text": "hi"}, {"client_msg_id": "w", "text": ["hi"]}])
def test_bad_whispers_change_nothing(app, team, login_as, payload):
    zhang = _console(app, login_as, "agent")
    _visitor_client, cid = _served_chat(app, team["site"], zhang)
    boss = _console(app, login_as, "manager")
    ack = _send(boss, "whisper", {"conversation_id": cid, **payload})
    assert "error" in ack and _events(boss, "error")[-1]["event"] == "whisper"
    assert _count(ChatMessage) == 2  # the visitor's question and "客服小张 为您服务"


# --- team room ------------------------------------------------------------------------------


def test_the_team_room_broadcasts_keeps_history_and_ignores_resends(app, team, login_as):
    zhang, boss = _console(app, login_as, "agent"), _console(app, login_as, "manager")
    assert _send(boss, "team_history") == {"messages": []}  # also joins the room
    ack = _send(zhang, "team_message", {"client_msg_id": "t1", "text": "<b>下午三点开会</b>"})
    assert ack["text"] == "<b>下午三点开会</b>" and ack["sender_name"] == "客服小张"
    [heard] = _events(boss, "team_message")
    assert (heard["id"], heard["sender_name"], heard["text"]) == (ack["id"], "客服小张", "<b>下午三点开会</b>")

    again = _send(zhang, "team_message", {"client_msg_id": "t1", "text": "<b>下午三点开会</b>"})
    assert again["id"] == ack["id"] and _count(TeamMessage) == 1
    assert _none_of(boss, "team_message") == []  # the resend is not broadcast again

    reply = _send(boss, "team_message", {"client_msg_id": "t2", "text": "收到"})
    assert _events(zhang, "team_message")[0]["text"] == "收到"
    assert _texts(_send(zhang, "team_history")["messages"]) == ["<b>下午三点开会</b>", "收到"]
    assert _texts(_send(zhang, "team_history", {"last_id": ack["id"]})["messages"]) == ["收到"]
    assert _send(zhang, "team_history", {"last_id": reply["id"]})["messages"] == []
    # Another user cannot reuse someone's message id.
    assert "error" in _send(boss, "team_message", {"client_msg_id": "t1", "text": "冒充"})
    assert _count(TeamMessage) == 2


def test_the_team_history_gives_the_latest_fifty(app, team, login_as):
    db.session.add_all([TeamMessage(sender_name="客服小张", text=f"消息{n}", client_msg_id=f"h{n}")
                        for n in range(60)])
    db.session.commit()
    zhang = _console(app, login_as, "agent")
    history = _send(zhang, "team_history")["messages"]
    assert len(history) == 50 and (history[0]["text"], history[-1]["text"]) == ("消息10", "消息59")


@pytest.mark.parametrize(("event", "payload"), [
    ("team_message", {"client_msg_id": "t", "text": ""}),
    ("team_message", {"client_msg_id": "t", "text": "长" * 2001}),
    ("team_message", {"client_msg_id": "x" * 65, "text": "hi"}),
    ("team_message", "hello"),
    ("team_history", {"last_id": "1"}),
    ("team_history", {"last_id": -1}),
])
def test_bad_team_payloads_get_an_error_and_change_nothing(app, team, login_as, event, payload):
    zhang = _console(app, login_as, "agent")
    ack = _send(zhang, event, payload)
    assert "error" in ack and _events(zhang, "error")[-1]["event"] == event
    assert _count(TeamMessage) == 0


def test_two_transfers_at_once_hand_the_chat_over_once(app, team, login_as, user_id):
    from sqlalchemy.orm import Session

    from app.services import chat_team
    from app.services.errors import Conflict

    zhang = _console(app, login_as, "agent")
    _visitor_client, cid = _served_chat(app, team["site"], zhang)
    owner = chat_team.member(db.session, user_id("agent"))
    stale = _conversation(cid)  # this session holds the state from before the other transfer
    assert stale.agent_id == team["zhang"].id
    with Session(db.engine) as other:  # another process is faster
        chat_team.transfer(other, chat_team.member(other, user_id("agent")), cid, to_agent_id=team["li"].id)
    with pytest.raises(Conflict):
        chat_team.transfer(db.session, owner, cid, to_group_id=team["tax"].id)
    assert (_conversation(cid).agent_id, stale.status) == (team["li"].id, ConversationStatus.active)
    assert _count(ChatTransfer) == 1
    assert _count(ChatMessage, ChatMessage.sender_type == SenderType.system) == 2  # 为您服务, one transfer
