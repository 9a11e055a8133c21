"""Visitor tracking (访客跟踪): page views and their sources, heartbeats, the browser, place and
address of a connection, the access trail and the console's online list — the parsers table-driven,
everything else through the ``/visitor`` and ``/agent`` namespaces."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db, socketio
from app.models.base import utcnow
from app.models.chat import AgentGroup, AgentProfile, ChatSite, PageView, Visitor
from app.services import chat_sites, tracking
from app.services.errors import NotFound
from tests.sockets import FreshSocketClient, _fanout_settled, _without_message_queue, received  # noqa: F401

ORIGIN = "http://127.0.0.1:5001"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 " \
         "Safari/537.36"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " \
         "Version/17.0 Mobile/15E148 Safari/604.1"
PAGE = "https://www.example.cn/services/bookkeeping?utm_source=baidu&utm_medium=cpc&utm_campaign=%E4%BB%A3%E8%B4%A6"
BAIDU = "https://www.baidu.com/s?wd=%E4%BB%A3%E7%90%86%E8%AE%B0%E8%B4%A6&rsv_spt=1"


@pytest.fixture
def site(app):
    site = chat_sites.prepare_new_site(ChatSite(name="演示站点", allowed_origins=ORIGIN))
    db.session.add(site)
    db.session.commit()
    db.session.add(AgentGroup(site_id=site.id, name="咨询部", is_default=True))
    db.session.commit()
    return site


def _visitor(app, site, ip: str = "127.0.0.1", user_agent: str = CHROME, **auth):
    """A widget connection from a browser at *ip*."""
    http = app.test_client()
    http.environ_base["REMOTE_ADDR"] = ip
    return FreshSocketClient(app, socketio, namespace="/visitor", headers={"Origin": ORIGIN, "User-Agent": user_agent},
                             auth={"site_key": site.site_key, **auth}, flask_test_client=http)


def _agent(app, login_as, user_id):
    db.session.add(AgentProfile(user_id=user_id("agent"), display_name="客服小张", max_chats=3))
    db.session.commit()
    client = FreshSocketClient(app, socketio, namespace="/agent", flask_test_client=login_as("agent"))
    assert client.is_connected("/agent")
    return client


def _events(client, name, namespace, wait=1.0) -> list:
    return received(client, name, namespace, wait)


def _only_visitor() -> Visitor:
    db.session.expire_all()
    [visitor] = db.session.scalars(select(Visitor)).all()
    return visitor


def _page_views() -> list[PageView]:
    db.session.expire_all()
    return list(db.session.scalars(select(PageView).order_by(PageView.id)))


def _view(client, url=PAGE, title="代理记账 - 示例财务", referrer="", **extra) -> dict:
    return client.emit("page_view", {"url": url, "title": title, "referrer": referrer, **extra},
                       namespace="/visitor", callback=True)


# --- parsers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("referrer", "engine", "keyword"), [
    (BAIDU, "Baidu", "代理记账"),
    ("https://m.baidu.com/s?word=%E6%B3%A8%E5%86%8C%E5%85%AC%E5%8F%B8", "Baidu", "注册公司"),
    ("http://www.baidu.com/s?ie=gbk&wd=%B4%FA%D5%CB", "Baidu", "代账"),  # GBK-encoded words
    ("https://www.baidu.com/link?url=Xk3abc&wd=&eqid=9f", "Baidu", None),  # Baidu hides the words
    ("https://www.google.com/search?q=bookkeeping+shanghai&hl=en", "Google", "bookkeeping shanghai"),
    ("https://www.google.co.uk/search?q=vat+return", "Google", "vat return"),
    ("https://www.google.com.hk/", "Google", None),  # Google hides the words
    ("https://cn.bing.com/search?q=%E4%BB%A3%E7%90%86%E8%AE%B0%E8%B4%A6&form=QBLH", "Bing", "代理记账"),
    ("https://www.bing.com/search?q=small+business+tax", "Bing", "small business tax"),
    ("https://www.sogou.com/web?query=%E8%AE%B0%E8%B4%A6%E6%8A%A5%E7%A8%8E", "Sogou", "记账报税"),
    ("https://www.so.com/s?q=%E8%B4%A2%E5%8A%A1%E5%A4%96%E5%8C%85&src=srp", "360", "财务外包"),
    ("https://m.so.com/s?q=%E4%BC%9A%E8%AE%A1", "360", "会计"),
    ("https://m.sm.cn/s?q=%E5%B7%A5%E5%95%86%E6%B3%A8%E5%86%8C&from=smor", "Shenma", "工商注册"),
    ("https://yandex.ru/search/?text=%D0%B1%D1%83%D1%85%D0%B3%D0%B0%D0%BB%D1%82%D0%B5%D1%80", "Yandex",
     "бухгалтер"),
    ("https://yandex.com.tr/search/?text=muhasebe", "Yandex", "muhasebe"),
    ("https://duckduckgo.com/?q=outsourced+accounting&t=h_", "DuckDuckGo", "outsourced accounting"),
    ("https://duckduckgo.com/", "DuckDuckGo", None),
    ("https://www.google.com/search?q=" + "x" * 300, "Google", "x" * 200),  # clipped to the column
    ("https://partner.example.com/blog?q=not+a+search", None, None),
    ("https://notgoogle.com/search?q=x", None, None),
    ("https://also.com/?q=x", None, None),
    ("android-app://com.google.android.gm/", None, None),
    ("", None, None),
    (None, None, None),
])
def test_referrer_gives_search_engine_and_keyword(referrer, engine, keyword):
    assert tracking.parse_referrer(referrer) == (engine, keyword)


@pytest.mark.parametrize(("url", "expected"), [
    (PAGE, {"utm_source": "baidu", "utm_medium": "cpc", "utm_campaign": "代账", "utm_term": None,
            "utm_content": None}),
    ("https://a.cn/?utm_source=wechat&utm_medium=social&utm_campaign=spring&utm_term=tax&utm_content=banner-2",
     {"utm_source": "wechat", "utm_medium": "social", "utm_campaign": "spring", "utm_term": "tax",
      "utm_content": "banner-2"}),
    ("https://a.cn/pricing", dict.fromkeys(tracking.UTM_FIELDS)),
    ("https://a.cn/?utm_source=&utm_medium=%20", dict.fromkeys(tracking.UTM_FIELDS)),
])
def test_page_address_gives_utm_parameters(url, expected):
    assert tracking.parse_utm(url) == expected


@pytest.mark.parametrize(("user_agent", "expected"), [
    (CHROME, ("Chrome 120", "Windows 10", None)),
    (IPHONE, ("Mobile Safari 17", "iOS 17.0", "iPhone")),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Safari/605.1.15", ("Safari 17", "Mac OS X 10.15", "Mac")),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
     "Mobile/15E148 Safari/604.1", ("Mobile Safari 16", "iOS 16.6", "iPad")),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", ("Firefox 121", "Ubuntu", None)),
    ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
     ("Baiduspider 2", None, "Spider")),
    ("", (None, None, None)),
    (None, (None, None, None)),
])
def test_user_agent_gives_browser_os_and_device(user_agent, expected):
    info = tracking.parse_user_agent(user_agent)
    assert (info.browser, info.os, info.device) == expected


@pytest.mark.parametrize(("screen", "valid"), [
    ("1920x1080", True), ("375x812", True), ("99999x99999", True), ("1920X1080", False), ("0x0", False),
    ("1920x1080x2", False), ("100000x1", False), (" 1920x1080", False), ("", False), (1920, False), (None, False),
])
def test_screen_size_format(screen, valid):
    assert tracking.valid_screen(screen) is valid


@pytest.mark.parametrize(("ip", "truncated"), [
    ("203.0.113.77", "203.0.113.0"),
    ("2001:db8:1234:5678::1", "2001:db8:1234::"),
    ("::ffff:203.0.113.9", "203.0.113.0"),
    ("not an address", None),
    (None, None),
])
def test_address_truncation(ip, truncated):
    assert tracking.truncate_ip(ip) == truncated


# --- connecting: browser, address, place ------------------------------------------------------


def test_a_connection_records_browser_device_language_and_screen(app, site):
    client = _visitor(app, site, user_agent=IPHONE, language="zh-CN", screen="390x844")
    assert client.is_connected("/visitor")
    visitor = _only_visitor()
    assert (visitor.browser, visitor.os, visitor.device) == ("Mobile Safari 17", "iOS 17.0", "iPhone")
    assert (visitor.language, visitor.screen, visitor.user_agent) == ("zh-CN", "390x844", IPHONE)


def test_a_bad_language_or_screen_on_connecting_is_left_out(app, site):
    client = _visitor(app, site, language="<script>", screen="huge")
    assert client.is_connected("/visitor")
    visitor = _only_visitor()
    assert (visitor.language, visitor.screen, visitor.browser) == (None, None, "Chrome 120")


@pytest.mark.parametrize(("truncate", "ip", "stored"), [
    (True, "203.0.113.77", "203.0.113.0"),
    (False, "203.0.113.77", "203.0.113.77"),
    (True, "2001:db8:1234:5678::1", "2001:db8:1234::"),
    (False, "2001:db8:1234:5678::1", "2001:db8:1234:5678::1"),
])
def test_the_address_is_stored_truncated_when_configured(app, site, monkeypatch, login_as, user_id, truncate, ip,
                                                         stored):
    monkeypatch.setitem(app.config, "TRACKING_TRUNCATE_IP", truncate)
    agent = _agent(app, login_as, user_id)
    client = _visitor(app, site, ip=ip)
    assert _only_visitor().ip == stored
    _view(client)
    [update] = _events(agent, "visitor_update", "/agent")
    if truncate:
        assert "ip" not in update  # agents never see an address while addresses are truncated
    else:
        assert update["ip"] == stored


def _tiny_geoip_db(path) -> str:
    """A MaxMind DB (GeoIP2-City layout) knowing two networks."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["zh-CN", "en"],
                        description="test")
    # (a /26 that the truncated address 203.0.113.0 is not in: the lookup must use the full address)
    writer.insert_network(IPSet(["203.0.113.64/26"]), {
        "country": {"names": {"zh-CN": "中国", "en": "China"}},
        "subdivisions": [{"names": {"zh-CN": "上海", "en": "Shanghai"}}],
        "city": {"names": {"zh-CN": "上海", "en": "Shanghai"}}})
    writer.insert_network(IPSet(["2001:db8::/32"]), {
        "country": {"names": {"en": "Germany", "de": "Deutschland"}}, "city": {"names": {"de": "Berlin"}}})
    target = path / "tiny-city.mmdb"
    writer.to_db_file(str(target))
    return str(target)


@pytest.mark.parametrize(("ip", "place", "stored"), [
    ("203.0.113.77", ("中国", "上海", "上海"), "203.0.113.0"),  # Chinese names preferred
    ("2001:db8:1234:5678::1", ("Germany", None, "Berlin"), "2001:db8:1234::"),  # then English, then any
    ("198.51.100.1", (None, None, None), "198.51.100.0"),  # not in the database
])
def test_the_place_comes_from_the_geoip_database(app, site, monkeypatch, tmp_path, ip, place, stored):
    monkeypatch.setitem(app.config, "GEOIP_DB", _tiny_geoip_db(tmp_path))
    monkeypatch.setitem(app.config, "TRACKING_TRUNCATE_IP", True)
    assert _visitor(app, site, ip=ip).is_connected("/visitor")
    visitor = _only_visitor()
    assert (visitor.country, visitor.region, visitor.city) == place
    assert visitor.ip == stored  # looked up with the full address, stored truncated


@pytest.mark.parametrize("database", ["unset", "missing file", "not a database"])
def test_without_a_usable_geoip_database_the_place_is_blank_and_the_visitor_still_connects(
        app, site, monkeypatch, tmp_path, database):
    path = {"unset": None, "missing file": str(tmp_path / "nowhere.mmdb")}.get(database)
    if database == "not a database":
        path = tmp_path / "broken.mmdb"
        path.write_bytes(b"this is not a MaxMind database" * 10)
        path = str(path)
    monkeypatch.setitem(app.config, "GEOIP_DB", path)
    client = _visitor(app, site, ip="203.0.113.77")
    assert client.is_connected("/visitor")
    visitor = _only_visitor()
    assert (visitor.country, visitor.region, visitor.city) == (None, None, None)


# --- page views -------------------------------------------------------------------------------


def test_a_page_view_is_stored_with_its_source_and_the_agents_hear_of_it(app, site, login_as, user_id):
    agent = _agent(app, login_as, user_id)
    client = _visitor(app, site, screen="1280x720")
    ack = _view(client, referrer=BAIDU, screen="1920x1080")
    [view] = _page_views()
    assert ack == {"page_view_id": view.id}
    assert (view.url, view.title, view.referrer, view.visit_no, view.seconds) == (
        PAGE, "代理记账 - 示例财务", BAIDU, 1, 0)
    assert (view.search_engine, view.keyword) == ("Baidu", "代理记账")
    assert (view.utm_source, view.utm_medium, view.utm_campaign, view.utm_term) == ("baidu", "cpc", "代账", None)
    visitor = _only_visitor()
    assert (visitor.current_url, visitor.current_title, visitor.page_views, visitor.screen) == (
        PAGE, "代理记账 - 示例财务", 1, "1920x1080")
    [update] = _events(agent, "visitor_update", "/agent")
    assert (update["id"], update["current_url"], update["page_views"], update["browser"]) == (
        visitor.id, PAGE, 1, "Chrome 120")


def test_a_page_view_without_title_or_referrer_is_fine(app, site):
    client = _visitor(app, site)
    ack = client.emit("page_view", {"url": "http://www.example.cn/"}, namespace="/visitor", callback=True)
    [view] = _page_views()
    assert ack == {"page_view_id": view.id}
    assert (view.title, view.referrer, view.search_engine, view.keyword) == (None, None, None, None)


@pytest.mark.parametrize(("payload", "field"), [
    ("https://www.example.cn/", "_"),
    (["https://www.example.cn/"], "_"),
    ({"title": "no address"}, "url"),
    ({"url": "ftp://files.example.cn/a.txt"}, "url"),
    ({"url": "javascript:alert(1)"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": "https://www.example.cn/\nSet-Cookie: x"}, "url"),
    ({"url": "https://www.example.cn/" + "a" * 2000}, "url"),
    ({"url": 42}, "url"),
    ({"url": "https://www.example.cn/", "title": "t" * 501}, "title"),
    ({"url": "https://www.example.cn/", "title": {"x": 1}}, "title"),
    ({"url": "https://www.example.cn/", "referrer": "https://r.cn/" + "r" * 2000}, "referrer"),
    ({"url": "https://www.example.cn/", "referrer": 7}, "referrer"),
    ({"url": "https://www.example.cn/", "screen": "huge"}, "screen"),
])
def test_bad_page_views_get_an_error_and_change_nothing(app, site, login_as, user_id, payload, field):
    agent = _agent(app, login_as, user_id)
    client = _visitor(app, site, screen="1280x720")
    before = _only_visitor().last_seen_at
    ack = client.emit("page_view", payload, namespace="/visitor", callback=True)
    assert field in ack["errors"] and ack["error"]
    [error] = _events(client, "error", "/visitor")
    assert error["event"] == "page_view" and field in error["errors"]
    assert _page_views() == []
    visitor = _only_visitor()
    assert (visitor.page_views, visitor.current_url, visitor.current_title, visitor.screen, visitor.last_seen_at) == (
        0, None, None, "1280x720", before)
    assert _events(agent, "visitor_update", "/agent", wait=0.2) == []


def test_the_longest_allowed_values_are_stored_whole(app, site):
    client = _visitor(app, site)
    url = "https://www.example.cn/" + "a" * (2000 - len("https://www.example.cn/"))
    referrer = "https://r.cn/" + "r" * (2000 - len("https://r.cn/"))
    ack = _view(client, url=url, title="题" * 500, referrer=referrer)
    [view] = _page_views()
    assert ack == {"page_view_id": view.id}
    assert (view.url, view.title, view.referrer) == (url, "题" * 500, referrer)


# --- heartbeats -------------------------------------------------------------------------------


def _age(view_id: int, seconds: float) -> None:
    """Pretend the page view was last seen *seconds* ago."""
    view = db.session.get(PageView, view_id)
    view.last_seen_at = utcnow() - timedelta(seconds=seconds)
    db.session.commit()


def _beat(client, payload=None):
    return client.emit("heartbeat", {} if payload is None else payload, namespace="/visitor", callback=True)


def test_heartbeats_add_time_on_page_capped_per_beat(app, site):
    client = _visitor(app, site)
    view_id = _view(client)["page_view_id"]
    _age(view_id, 20.5)
    assert _beat(client) == {"page_view_id": view_id, "seconds": 20}
    _age(view_id, 3 * 3600)  # the laptop slept for three hours: one beat adds at most a minute
    assert _beat(client) == {"page_view_id": view_id, "seconds": 20 + tracking.HEARTBEAT_CAP}
    assert _beat(client)["seconds"] == 20 + tracking.HEARTBEAT_CAP  # a beat right after adds nothing
    db.session.expire_all()
    visitor = _only_visitor()
    assert utcnow() - visitor.last_seen_at < timedelta(minutes=1)


def test_heartbeat_fractions_carry_over_and_never_exceed_the_real_time():
    view = PageView(visitor_id=1, url="https://a.cn/", started_at=datetime(2026, 5, 1, 9), seconds=0,
                    last_seen_at=datetime(2026, 5, 1, 9))
    visitor = Visitor(id=1, site_id=1, uid="u", visits=1, page_views=1)

    class _Session:  # heartbeat's use of a session, in memory: this test is about the arithmetic
        def get(self, model, key):  # noqa: ANN001, ANN201, ARG002
            return visitor

        def scalar(self, query):  # noqa: ANN001, ANN201, ARG002
            return view

        def commit(self) -> None:
            pass

    start = view.last_seen_at
    for beat in range(1, 41):
        tracking.heartbeat(_Session(), 1, 7, now=start + timedelta(seconds=15.4 * beat))
    assert view.seconds == int(15.4 * 40)  # 616: nothing lost to rounding, nothing invented


@pytest.mark.parametrize("payload", ["beat", 5, ["x"]])
def test_a_bad_heartbeat_gets_an_error_and_adds_nothing(app, site, payload):
    client = _visitor(app, site)
    view_id = _view(client)["page_view_id"]
    _age(view_id, 30)
    ack = _beat(client, payload)
    assert "error" in ack
    assert _events(client, "error", "/visitor")[0]["event"] == "heartbeat"
    assert _page_views()[0].seconds == 0


def test_a_reconnected_widget_names_its_page_and_only_its_own(app, site):
    first = _visitor(app, site)
    token = _events(first, "session", "/visitor")[0]["visitor_token"]
    view_id = _view(first)["page_view_id"]
    stranger = _visitor(app, site)
    stranger_view = _view(stranger, url="https://www.example.cn/other")["page_view_id"]
    again = _visitor(app, site, visitor_token=token)  # another connection: no page view of its own yet
    _age(view_id, 12)
    assert _beat(again, {"page_view_id": view_id}) == {"page_view_id": view_id, "seconds": 12}
    _age(stranger_view, 30)
    assert _beat(again, {"page_view_id": stranger_view}) == {"page_view_id": None, "seconds": 0}
    assert db.session.get(PageView, stranger_view).seconds == 0
    for bad in ("7", 0, True):
        assert "page_view_id" in _beat(again, {"page_view_id": bad})["errors"]


def test_a_heartbeat_before_any_page_view_credits_nothing(app, site):
    client = _visitor(app, site)
    assert _beat(client) == {"page_view_id": None, "seconds": 0}
    assert _page_views() == []


def test_each_tab_credits_its_own_page(app, site):
    first = _visitor(app, site)
    [session] = _events(first, "session", "/visitor")
    second = _visitor(app, site, visitor_token=session["visitor_token"])
    first_view = _view(first, url="https://www.example.cn/a")["page_view_id"]
    second_view = _view(second, url="https://www.example.cn/b")["page_view_id"]
    _age(first_view, 15)
    _age(second_view, 15)
    assert _beat(first) == {"page_view_id": first_view, "seconds": 15}
    assert [(v.url, v.seconds) for v in _page_views()] == [("https://www.example.cn/a", 15),
                                                           ("https://www.example.cn/b", 0)]


# --- trail and online list ------------------------------------------------------------------


def test_the_trail_is_newest_first_and_a_returning_visitor_starts_visit_two(app, site):
    client = _visitor(app, site)
    [session] = _events(client, "session", "/visitor")
    home = _view(client, url="https://www.example.cn/", referrer="https://www.google.com/")["page_view_id"]
    pricing = _view(client, url="https://www.example.cn/pricing")["page_view_id"]
    _age(home, 40)
    _age(pricing, 10)
    # (the widget beats on the current page; the home page's time was credited while it was open)
    tracking.heartbeat(db.session, _only_visitor().id, home)
    tracking.heartbeat(db.session, _only_visitor().id, pricing)
    client.disconnect("/visitor")
    visitor = _only_visitor()
    visitor.last_seen_at = utcnow() - timedelta(hours=2)
    db.session.commit()

    again = _visitor(app, site, visitor_token=session["visitor_token"])
    assert _events(again, "session", "/visitor")[0]["returning"] is True
    contact = _view(again, url="https://www.example.cn/contact", referrer=BAIDU)["page_view_id"]
    trail = tracking.visit_trail(db.session, _only_visitor().id)
    assert [(e.id, e.visit_no, e.seconds) for e in trail] == [(contact, 2, 0), (pricing, 1, 10), (home, 1, 40)]
    assert (trail[-1].search_engine, trail[-1].keyword, trail[0].keyword) == ("Google", None, "代理记账")
    assert trail[0].as_dict()["url"] == "https://www.example.cn/contact"
    assert _only_visitor().visits == 2


def test_the_trail_of_an_unknown_visitor_is_not_found(app):
    with pytest.raises(NotFound):
        tracking.visit_trail(db.session, 999999)


def test_online_visitors_show_current_page_time_on_site_source_and_visits(app, site):
    other_site = chat_sites.prepare_new_site(ChatSite(name="另一站点", allowed_origins=ORIGIN))
    db.session.add(other_site)
    db.session.commit()
    here = _visitor(app, site)
    [session] = _events(here, "session", "/visitor")
    landing = _view(here, url=PAGE, referrer=BAIDU)["page_view_id"]
    _age(landing, 30)
    _beat(here)
    _view(here, url="https://www.example.cn/contact", title="联系我们")
    elsewhere = _visitor(app, other_site)
    _view(elsewhere, url="https://other.example.cn/")
    gone = _visitor(app, site)
    _view(gone, url="https://www.example.cn/bye")
    gone.disconnect("/visitor")

    rows = tracking.online_visitors(db.session, [site.id])
    assert len(rows) == 1
    [row] = rows
    assert row["uid"] == session["visitor_id"]
    assert (row["current_url"], row["current_title"], row["visits"], row["page_views"]) == (
        "https://www.example.cn/contact", "联系我们", 1, 2)
    assert row["seconds_on_site"] == 30
    assert row["source"]["search_engine"] == "Baidu" and row["source"]["keyword"] == "代理记账"
    assert row["source"]["utm_source"] == "baidu" and "ip" not in row
    assert {r["site_id"] for r in tracking.online_visitors(db.session, {site.id, other_site.id})} == {
        site.id, other_site.id}
    assert tracking.online_visitors(db.session, []) == []


def test_time_on_site_counts_only_the_current_visit(app, site):
    client = _visitor(app, site)
    [session] = _events(client, "session", "/visitor")
    first = _view(client)["page_view_id"]
    _age(first, 50)
    _beat(client)
    client.disconnect("/visitor")
    visitor = _only_visitor()
    visitor.last_seen_at = utcnow() - timedelta(hours=3)
    db.session.commit()
    again = _visitor(app, site, visitor_token=session["visitor_token"])
    second = _view(again, url="https://www.example.cn/again", referrer="")["page_view_id"]
    _age(second, 5)
    _beat(again)
    [row] = tracking.online_visitors(db.session, [site.id])
    assert (row["visits"], row["seconds_on_site"], row["source"]["referrer"]) == (2, 5, None)
    assert db.session.scalar(select(func.sum(PageView.seconds))) == 55
