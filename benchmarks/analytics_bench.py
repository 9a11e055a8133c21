"""Chat analytics over a large history: how long each table of 在线客服 → 统计分析 (and the staffing
planner's history) takes for a month's view and for a year's.

The script fills a scratch PostgreSQL database (dropped and re-created: give it a scratch one) with
a year of chats — ``--conversations`` conversations (default 100,000) spread over the 365 days to
today, ``--messages`` messages (default 1,000,000) among them, an offer for each chat and a missed
one for one in ten, a transfer for one in twenty, ``--visitors`` visitors with three page views each
from referrers, search engines, campaigns and regions — with SQL ``generate_series`` (no
per-row Python), runs ``ANALYZE``, then times every table through the service functions the screen
and the API call (``app.services.chat_analytics.table``), ``--runs`` times each after one warm-up,
and prints min / median / max in milliseconds.

    .venv/bin/python benchmarks/analytics_bench.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/<scratch database> --runs 5
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AGENTS = 20

FILL = [
    # visitors: one site; a region for GeoIP-style grouping
    """INSERT INTO chat_visitor (site_id, uid, first_seen_at, last_seen_at, visits, page_views, online, country, region)
       SELECT :site, 'v' || g, now() - (g % 365) * interval '1 day', now(), 1, 3, false, '中国',
              (ARRAY['上海','浙江','江苏','广东','北京','四川'])[1 + g % 6]
       FROM generate_series(1, :visitors) g""",
    # three page views a visitor, the first with a referrer, a search keyword or a campaign
    """INSERT INTO chat_page_view (visitor_id, visit_no, url, title, referrer, search_engine, keyword, utm_source,
                                  utm_campaign, started_at, last_seen_at, seconds)
       SELECT v.id, 1,
              'https://www.example.cn/' || (ARRAY['', 'pricing', 'services/bookkeeping', 'about'])[1 + (v.id + p) % 4],
              '页面', CASE WHEN p = 0 THEN (ARRAY['https://www.baidu.com/s?wd=代账', 'https://www.so.com/',
                                               'https://mp.weixin.qq.com/s/abc', NULL])[1 + v.id % 4] END,
              CASE WHEN p = 0 AND v.id % 4 = 0 THEN 'baidu' END,
              CASE WHEN p = 0 AND v.id % 4 = 0 THEN '代理记账多少钱' END,
              CASE WHEN p = 0 AND v.id % 5 = 0 THEN 'wechat' END,
              CASE WHEN p = 0 AND v.id % 5 = 0 THEN 'spring-' || (v.id % 3) END,
              v.first_seen_at + p * interval '1 minute', v.first_seen_at + p * interval '1 minute', 60
       FROM chat_visitor v CROSS JOIN generate_series(0, 2) p""",
    # conversations: spread over the year, answered within a minute, a chat of ~10 minutes
    """INSERT INTO chat_conversation (site_id, visitor_id, group_id, agent_id, status, queued_at, offered_at,
                                     accepted_at, first_response_at, closed_at, rating, closed_by)
       SELECT :site, :first_visitor + (g % :visitors), :group,
              CASE WHEN g % 12 = 0 THEN NULL ELSE :first_agent + (g % :agents) END, 'closed',
              t, t + interval '2 seconds',
              CASE WHEN g % 12 = 0 THEN NULL ELSE t + (g % 60) * interval '1 second' END,
              CASE WHEN g % 12 = 0 THEN NULL ELSE t + (5 + g % 90) * interval '1 second' END,
              t + (300 + g % 900) * interval '1 second',
              CASE WHEN g % 3 = 0 THEN 1 + g % 5 END,
              CASE WHEN g % 12 = 0 THEN 'visitor' ELSE 'agent' END
       FROM (SELECT g, now() - interval '365 days' + (g::float / :conversations) * interval '365 days'
                         + ((g * 7919) % 3600) * interval '1 second' AS t
             FROM generate_series(1, :conversations) g) s""",
    # messages: the visitor and the agent in turn, 30 s apart
    """INSERT INTO chat_message (conversation_id, sender_type, sender_name, text, created_at)
       SELECT c.id, CASE WHEN m % 2 = 0 OR c.agent_id IS NULL THEN 'visitor' ELSE 'agent' END, NULL,
              '消息 ' || m, c.queued_at + m * interval '30 seconds'
       FROM chat_conversation c CROSS JOIN generate_series(0, :per_chat - 1) m""",
    # an accepted offer for each answered chat, a missed one before it for one chat in ten
    """INSERT INTO chat_offer (conversation_id, agent_id, offered_at, expires_at, outcome, decided_at)
       SELECT id, agent_id, offered_at, offered_at + interval '30 seconds', 'accepted', accepted_at
       FROM chat_conversation WHERE agent_id IS NOT NULL""",
    """INSERT INTO chat_offer (conversation_id, agent_id, offered_at, expires_at, outcome, decided_at)
       SELECT id, :first_agent + ((id + 1) % :agents), offered_at - interval '30 seconds', offered_at,
              'timed_out', offered_at
       FROM chat_conversation WHERE id % 10 = 0""",
    """INSERT INTO chat_transfer (conversation_id, from_agent_id, to_agent_id, created_at)
       SELECT id, agent_id, :first_agent + ((id + 3) % :agents), accepted_at + interval '1 minute'
       FROM chat_conversation WHERE id % 20 = 0 AND agent_id IS NOT NULL""",
]


def fresh_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql") or not re.fullmatch(r"[A-Za-z0-9_]+", parsed.database or ""):
        raise SystemExit("give a PostgreSQL scratch database: it is dropped and re-created")
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def fill(app, args: argparse.Namespace) -> dict:  # noqa: ANN001
    from sqlalchemy import text

    from app.extensions import db
    from app.models.chat import AgentGroup, AgentProfile, ChatSite
    from app.services import chat_sites
    from app.services.bootstrap import prepare_database
    from app.services.users import create_user

    began = time.monotonic()
    prepare_database(app)
    site = chat_sites.prepare_new_site(ChatSite(name="Bench", allowed_origins="https://www.example.cn"))
    group = AgentGroup(site=site, name="Bench group", is_default=True)
    db.session.add_all([site, group])
    db.session.commit()
    profiles = []
    for n in range(AGENTS):
        user = create_user(app, f"bench-agent-{n}", "Bench-Pass-2026xy", ["Agent"], first_name=f"客服{n}")
        profile = AgentProfile(user_id=user.id, display_name=f"客服{n}", max_chats=5)
        db.session.add(profile)
        profile.groups.append(group)
        profiles.append(profile)
    db.session.add_all(profiles)
    db.session.commit()
    params = {"site": site.id, "group": group.id, "visitors": args.visitors, "agents": AGENTS,
              "first_agent": profiles[0].id, "conversations": args.conversations,
              "per_chat": max(1, args.messages // args.conversations)}
    with db.engine.begin() as conn:
        for statement in FILL:
            if ":first_visitor" in statement:
                params["first_visitor"] = conn.execute(text("SELECT min(id) FROM chat_visitor")).scalar()
            conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608 - fixed names
                  for t in ("chat_conversation", "chat_message", "chat_offer", "chat_visitor", "chat_page_view")}
    counts["seconds"] = round(time.monotonic() - began, 1)
    return counts


def measure(app, runs: int) -> list[tuple[str, list[float]]]:  # noqa: ANN001
    from app.extensions import db
    from app.services import chat_analytics, staffing_history

    tz = app.config.get("TZ_DISPLAY", "Asia/Shanghai")
    today = date.today()
    month_start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)  # last full month
    month_end = today.replace(day=1) - timedelta(days=1)
    views = {"month": {"date_from": month_start.isoformat(), "date_to": month_end.isoformat()},
             "year": {"date_from": (today - timedelta(days=364)).isoformat(), "date_to": today.isoformat()}}
    cases = []
    for label, dates in views.items():
        for name, extra in (("agents", {}), ("hours", {}), ("queue", {}), ("visits", {}),
                            ("sources", {"by": "referrer"}), ("sources", {"by": "region"})):
            args = {**dates, **extra}
            cases.append((f"{label}: {name}{' by ' + extra['by'] if extra else ''}", name, args))
    results = []
    for title, name, args in cases:
        filters = chat_analytics.read_filters(args, today)
        timings = []
        for run in range(runs + 1):
            began = time.perf_counter()
            chat_analytics.table(db.session, name, filters, tz, args)
            db.session.rollback()
            if run:  # the first is a warm-up
                timings.append((time.perf_counter() - began) * 1000)
        results.append((title, timings))
        print(f"  {title:<28} {min(timings):8.0f} {statistics.median(timings):8.0f} {max(timings):8.0f} ms",
              flush=True)
    # the staffing planner's history over the month
    filters = staffing_history.Filters(date_from=month_start, date_to=month_end)
    timings = []
    for run in range(runs + 1):
        began = time.perf_counter()
        staffing_history.history(db.session, filters, tz)
        db.session.rollback()
        if run:
            timings.append((time.perf_counter() - began) * 1000)
    results.append(("month: staffing planner", timings))
    print(f"  {'month: staffing planner':<28} {min(timings):8.0f} {statistics.median(timings):8.0f} "
          f"{max(timings):8.0f} ms", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL scratch database (dropped and re-created)")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--visitors", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (0 < args.conversations <= 1_000_000 and 0 < args.messages <= 20_000_000 and 0 < args.visitors <= 1_000_000
            and 0 < args.runs <= 20):
        raise SystemExit("out of bounds")
    fresh_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("INSTANCE_PATH", str(Path("/tmp") / "analytics-bench-instance"))  # noqa: S108
    sys.path.insert(0, str(ROOT))
    from app import create_app

    app = create_app()
    print(f"analytics bench: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with app.app_context():
        counts = fill(app, args)
        print(f"  filled: {counts}", flush=True)
        print(f"  {'table':<28} {'min':>8} {'median':>8} {'max':>8}", flush=True)
        measure(app, args.runs)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
