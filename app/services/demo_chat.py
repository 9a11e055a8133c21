"""Demo live chat (在线客服演示): a chat site for the demo host page, a group with the two demo agents,
shared canned replies, an invitation rule, knowledge base entries the bot answers with (代账
prices, registering a company, filing deadlines), conversation topics (代理记账咨询, 报税问题, 发票,
工商注册, 投诉) and quick links (the tax administration's sites for every site, the demo site's
services page for the demo site).

Rules:
- The site's key is ``DEMO_SITE_KEY`` when configured, else generated; it allows the demo host page
  at ``http://127.0.0.1:<DEMO_HOST_PORT>`` and ``http://localhost:<DEMO_HOST_PORT>`` (5001 by
  default, always listed) and has no business hours (always open).
- ``agent1`` and ``agent2`` (when those users exist) get agent profiles 客服一号 and 客服二号 in the
  site's default group.
- Idempotent: the demo site found again (by its key or name) is left as it is; agent profiles
  that exist are kept. Commits.
- On every start ``allow_demo_host`` adds the demo host page's origins for the current
  ``DEMO_HOST_PORT`` to the demo site when they are missing (the port may differ from the first
  start's); origins an admin added or removed otherwise stay as they are.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.models.chat import AgentGroup, AgentProfile, CannedReply, ChatSite, InvitationRule
from app.models.chat_faq import FaqEntry
from app.models.chat_topics import ChatTopic, QuickLink
from app.services.audit import SYSTEM, acting_as
from app.services.chat_faq import validate_entry
from app.services.chat_sites import prepare_new_site

DEMO_SITE_NAME = "示范代账官网"
DEMO_GROUP_NAME = "代账咨询"
DEMO_AGENTS = (("agent1", "客服一号"), ("agent2", "客服二号"))
DEFAULT_HOST_PORT = 5001
CANNED_REPLIES = (
    ("hi", "问候", "{visitor_name}您好，我是示范代账的在线客服{agent_name}，很高兴为您服务。请问有什么可以帮您？"),
    ("price", "代账价格", "小规模纳税人代理记账每月 300 元起，一般纳税人每月 800 元起，具体以票据量为准。"),
)
INVITATION_TEXT = "您好！对代理记账、报税有疑问吗？点这里和客服聊聊。"
# (category, question, keywords, answer)
FAQ_ENTRIES = (
    ("代账价格", "代理记账多少钱一个月？", "代账 记账 价格 收费 费用 报价 多少钱",
     "小规模纳税人代理记账每月 300 元起，一般纳税人每月 800 元起，按年付费可优惠，具体以每月票据量为准。"),
    ("代账价格", "零申报代账怎么收费？", "零申报 无收入 价格 收费",
     "没有收入的公司也要按期零申报。零申报代账每月 200 元，包含记账、报税和年报。"),
    ("注册公司", "注册公司需要多久，要准备什么材料？", "注册 开公司 营业执照 工商注册 材料 流程",
     "材料齐全时注册公司约 5 个工作日办结：需要股东和法人的身份证、注册地址证明（房产证或租赁合同）、"
     "公司名称（备选 3 个）和经营范围。我们可以代办全程。"),
    ("注册公司", "注册公司收费多少？", "注册 开公司 营业执照 费用 价格",
     "代办营业执照 500 元，含刻章、银行开户预约和税务登记；如需注册地址另行报价。"),
    ("报税", "每个月几号之前报税？", "报税 申报 截止 期限 日期 征期 增值税",
     "增值税、附加税和个税每月 15 日前申报（遇节假日顺延，以电子税务局公布的征期为准）；"
     "小规模纳税人按季申报的，在季度结束后下月 15 日前申报。"),
    ("报税", "企业所得税汇算清缴什么时候截止？", "汇算清缴 企业所得税 年报 截止 期限",
     "企业所得税年度汇算清缴在次年 5 月 31 日前完成；工商年报在每年 6 月 30 日前报送。"),
)


# (name, description) in their sort order
TOPICS = (
    ("代理记账咨询", "代账服务内容、价格、签约"),
    ("报税问题", "申报期限、税种、零申报、汇算清缴"),
    ("发票", "开票、领票、发票丢失与红冲"),
    ("工商注册", "注册公司、变更、注销、年报"),
    ("投诉", "对服务不满意，需要主管跟进"),
)
# (title, url): for every site
QUICK_LINKS = (
    ("国家税务总局", "https://www.chinatax.gov.cn/"),
    ("国家企业信用信息公示系统（年报）", "https://www.gsxt.gov.cn/"),
)


def demo_origins(port: int | None) -> str:
    """The allowed origins of the demo site: the demo host page on 5001 and on *port*."""
    ports = [DEFAULT_HOST_PORT] + ([port] if port and port != DEFAULT_HOST_PORT else [])
    return "\n".join(f"http://{host}:{p}" for p in ports for host in ("127.0.0.1", "localhost"))


def find_demo_site(app: Flask) -> ChatSite | None:
    """The demo site: the one with ``DEMO_SITE_KEY`` when that is set, else the one named like the demo."""
    key = app.config.get("DEMO_SITE_KEY")
    if key:
        return db.session.scalar(select(ChatSite).where(ChatSite.site_key == key))
    return db.session.scalar(select(ChatSite).where(ChatSite.name == DEMO_SITE_NAME).order_by(ChatSite.id))


def seed_demo_chat(app: Flask) -> str:
    """Create the demo chat site with its group, agents, canned replies, invitation rule and
    knowledge base entries when missing; return the site key. Commits."""
    site = find_demo_site(app)
    if site is not None:
        return site.site_key
    with acting_as(SYSTEM):
        site = prepare_new_site(ChatSite(
            name=DEMO_SITE_NAME, site_key=app.config.get("DEMO_SITE_KEY") or None,
            allowed_origins=demo_origins(app.config.get("DEMO_HOST_PORT")),
            welcome_text="您好，欢迎来到示范代账！工商注册、代理记账、纳税申报，有问题随时问我们。",
            warning_banner="温馨提示：请勿在对话中发送银行卡密码、验证码等敏感信息。",
            theme_color="#1677ff", business_hours=None, offline_form=True,
            auto_reply_seconds=60, auto_reply_text="客服正在忙，请稍候，我们会尽快回复您。", active=True))
        db.session.add(site)
        db.session.flush()
        group = AgentGroup(site_id=site.id, name=DEMO_GROUP_NAME, is_default=True, priority=100)
        db.session.add(group)
        sm = app.appbuilder.sm
        for username, display_name in DEMO_AGENTS:
            user = sm.find_user(username=username)
            if user is None:
                continue
            profile = db.session.scalar(select(AgentProfile).where(AgentProfile.user_id == user.id))
            if profile is None:
                profile = AgentProfile(user_id=user.id, display_name=display_name, max_chats=5,
                                       languages="zh_CN,en", greeting=f"您好，我是{display_name}，请问有什么可以帮您？")
                db.session.add(profile)
            group.agents.append(profile)
        for shortcut, title, text in CANNED_REPLIES:
            db.session.add(CannedReply(owner_id=None, site_id=site.id, category="常用", shortcut=shortcut,
                                       title=title, text=text))
        db.session.add(InvitationRule(site_id=site.id, name="浏览 30 秒邀请", message=INVITATION_TEXT,
                                      min_seconds_on_page=30, priority=100, active=True))
        for category, question, keywords, answer in FAQ_ENTRIES:
            entry = FaqEntry(site_id=site.id, category=category, question=question, keywords=keywords,
                             answer=answer, active=True)
            validate_entry(db.session, entry)
            db.session.add(entry)
        seed_topics_and_links(site, app.config.get("DEMO_HOST_PORT") or DEFAULT_HOST_PORT)
        db.session.commit()
    return site.site_key


def seed_topics_and_links(site: ChatSite, port: int) -> None:
    """Add the demo conversation topics and quick links that are missing (by name, by title), the
    services page of the demo website (on *port*) being the demo site's own link. Does not commit."""
    names = set(db.session.scalars(select(ChatTopic.name)))
    for order, (name, description) in enumerate(TOPICS, start=1):
        if name not in names:
            db.session.add(ChatTopic(name=name, description=description, sort_order=order * 10, active=True))
    titles = set(db.session.scalars(select(QuickLink.title)))
    links = [(None, title, url) for title, url in QUICK_LINKS]
    links.append((site.id, "服务与价格", f"http://127.0.0.1:{port}/services.html"))
    for order, (site_id, title, url) in enumerate(links, start=1):
        if title not in titles:
            db.session.add(QuickLink(site_id=site_id, title=title, url=url, sort_order=order * 10, active=True))


def allow_demo_host(app: Flask, site: ChatSite, port: int | None) -> list[str]:
    """Add the demo host page's origins on *port* (``demo_origins``) that *site* does not allow yet;
    return the added ones. Commits when something was added (audited as the system's change)."""
    if not port:
        return []
    present = {line.strip().rstrip("/").lower() for line in (site.allowed_origins or "").splitlines()}
    wanted = [origin for origin in demo_origins(port).splitlines() if f":{port}" in origin]
    added = [origin for origin in wanted if origin.lower() not in present]
    if added:
        with acting_as(SYSTEM):
            site.allowed_origins = "\n".join([*(site.allowed_origins or "").splitlines(), *added]).strip()
            db.session.commit()
    return added
