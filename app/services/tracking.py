"""Visitor tracking (访客跟踪): which pages a chat visitor opened, where they came from, how long they
stayed, and what browser, device and place they connect from.

Rules:
- A page view is ``{url, title?, referrer?, screen?}``: the page address is an http(s) URL of at most
  2000 characters, the title at most 500, the referrer at most 2000 or empty, the screen size like
  ``1920x1080``. Anything else is refused (``ValidationFailed``) and nothing is written.
- A page view belongs to the visitor's current visit (``visit_no`` = ``Visitor.visits``: a visitor
  coming back after 30 minutes away starts a new visit when they connect). It becomes the visitor's
  current page. Its referrer names the search engine and the searched words when it is one of the
  known engines (an engine that hides the words gives the engine and a blank keyword); its address
  gives the ``utm_*`` campaign parameters.
- A heartbeat adds the seconds since the page view was last seen to its time on page, at most
  ``HEARTBEAT_CAP`` per beat, so a laptop that slept for hours adds a minute, not hours; the sum of
  all beats never exceeds the time that really passed.
- On connecting, the user agent gives browser, operating system and device; the language and a valid
  screen size are kept (an invalid one is ignored rather than refusing the visitor). The place
  (country, region, city) comes from a MaxMind-format database when one is configured; a missing or
  unreadable database leaves it blank. The address is stored truncated when asked (IPv4 to /24,
  IPv6 to /48), after the place was looked up with the full address.
Functions that write commit their own transaction. Errors: ``ValidationFailed``, ``NotFound``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import PageView, Visitor
from app.services.errors import NotFound, ValidationFailed
from app.services.timefmt import utc_iso

log = logging.getLogger(__name__)

MAX_URL = 2000
MAX_TITLE = 500
MAX_REFERRER = 2000
MAX_KEYWORD = 200
MAX_UTM = 200
HEARTBEAT_CAP = 60  # seconds credited by one heartbeat at most (the widget beats every ~15 s)
BEAT_SLACK = 20  # seconds after its last beat that a page still counts as being viewed (beats come every 15 s)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
GEO_LANGUAGES = ("zh-CN", "en")  # MaxMind name preference

_SCREEN = re.compile(r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
# (engine, host pattern, query parameters holding the searched words, first found wins)
_ENGINES: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    ("Baidu", re.compile(r"(?:^|\.)baidu\.com$"), ("wd", "word")),
    ("Google", re.compile(r"(?:^|\.)google(?:\.com?)?\.[a-z]{2,3}$"), ("q",)),
    ("Bing", re.compile(r"(?:^|\.)bing\.com$"), ("q",)),
    ("Sogou", re.compile(r"(?:^|\.)sogou\.com$"), ("query", "keyword")),
    ("360", re.compile(r"(?:^|\.)so\.com$"), ("q",)),
    ("Shenma", re.compile(r"(?:^|\.)sm\.cn$"), ("q",)),
    ("Yandex", re.compile(r"(?:^|\.)yandex(?:\.com)?\.[a-z]{2,3}$"), ("text",)),
    ("DuckDuckGo", re.compile(r"(?:^|\.)duckduckgo\.com$"), ("q",)),
)
# Chinese engines still send GBK-encoded words when the page says so in ``ie``.
_QUERY_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gb18030", "gb2312": "gb18030",
                    "gb18030": "gb18030", "big5": "big5"}


# --- parsing ----------------------------------------------------------------------------------


def _clip(value: object, length: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:length] or None


def _http_url(value: str) -> bool:
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _query_params(query: str) -> dict[str, list[str]]:
    params = parse_qs(query, errors="replace")
    declared = (params.get("ie") or params.get("inputEncoding") or [""])[0].strip().lower()
    encoding = _QUERY_ENCODINGS.get(declared)
    if encoding and encoding != "utf-8":
        params = parse_qs(query, encoding=encoding, errors="replace")
    return params


def parse_referrer(referrer: str | None) -> tuple[str | None, str | None]:
    """``(search engine, keyword)`` of a referrer; ``(None, None)`` when it is no known search engine.

    Known: Baidu (``wd``/``word``), Google (``q``), Bing (``q``), Sogou (``query``), 360 so.com (``q``),
    Shenma sm.cn (``q``), Yandex (``text``), DuckDuckGo (``q``). An engine that hides the words gives
    a blank (``None``) keyword.
    """
    if not referrer or not _http_url(referrer):
        return None, None
    parts = urlsplit(referrer)
    host = (parts.hostname or "").lower().rstrip(".")
    for engine, pattern, keys in _ENGINES:
        if pattern.search(host):
            params = _query_params(parts.query)
            for key in keys:
                keyword = _clip((params.get(key) or [""])[0], MAX_KEYWORD)
                if keyword:
                    return engine, keyword
            return engine, None
    return None, None


def parse_utm(url: str | None) -> dict[str, str | None]:
    """The ``utm_source`` … ``utm_content`` parameters of a page address (blank when absent)."""
    params = parse_qs(urlsplit(url).query, errors="replace") if url else {}
    return {field: _clip((params.get(field) or [""])[0], MAX_UTM) for field in UTM_FIELDS}


@dataclass(frozen=True)
class ClientInfo:
    browser: str | None
    os: str | None
    device: str | None


def _named(family: str | None, *versions: str | None) -> str | None:
    if not family or family == "Other":
        return None
    version = ".".join(v for v in _leading(versions))
    return _clip(f"{family} {version}" if version else family, 100)


def _leading(versions: tuple[str | None, ...]) -> list[str]:
    found = []
    for value in versions:
        if not value:
            break
        found.append(value)
    return found


def parse_user_agent(user_agent: str | None) -> ClientInfo:
    """Browser (``Chrome 120``), operating system (``Windows 10``, ``Mac OS X 10.15``) and device
    family (``iPhone``; blank for desktops and unknown devices) of a User-Agent header."""
    from ua_parser import parse

    text = _clip(user_agent, 500)
    if not text:
        return ClientInfo(None, None, None)
    result = parse(text)
    browser = _named(result.user_agent.family, result.user_agent.major) if result.user_agent else None
    system = _named(result.os.family, result.os.major, result.os.minor) if result.os else None
    device = _named(result.device.family) if result.device else None
    return ClientInfo(browser, system, device)


def valid_screen(screen: object) -> bool:
    """A screen size is ``WIDTHxHEIGHT`` in pixels, each 10 to 99999 (``1920x1080``)."""
    return isinstance(screen, str) and bool(_SCREEN.match(screen))


def truncate_ip(ip: str | None) -> str | None:
    """The address with its host part zeroed: IPv4 to its /24 (last octet 0), IPv6 to its /48.
    Not an address: ``None``."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


@dataclass(frozen=True)
class Place:
    country: str | None = None
    region: str | None = None
    city: str | None = None


_readers: dict[tuple[str, int, int], Any] = {}  # per-process cache of open databases, reopened when replaced


def _reader(path: str) -> Any | None:  # noqa: ANN401 - maxminddb.Reader
    import maxminddb

    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key not in _readers:
            reader = maxminddb.open_database(path)
            for old in [k for k in _readers if k[0] == path]:
                _readers.pop(old).close()
            _readers[key] = reader
        return _readers[key]
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        log.warning("GeoIP database %s is unreadable: %s", path, exc)
        return None


def _name(entry: object) -> str | None:
    """A place name from a MaxMind record entry: ``{"names": {"zh-CN": ..., "en": ...}}`` or a plain string."""
    if isinstance(entry, str):
        return _clip(entry, 100)
    if isinstance(entry, dict):
        names = entry.get("names")
        if isinstance(names, dict):
            for language in (*GEO_LANGUAGES, *sorted(names)):
                if isinstance(names.get(language), str) and names[language].strip():
                    return _clip(names[language], 100)
    return None


def locate(ip: str | None, geoip_db: str | None) -> Place:
    """Country, region and city of an address from a MaxMind-format (GeoIP2/GeoLite2 City) database.

    No database configured, a missing or unreadable file, an address it does not know: a blank place.
    """
    if not geoip_db or not ip:
        return Place()
    reader = _reader(geoip_db)
    if reader is None:
        return Place()
    try:
        record = reader.get(ip.strip())
    except (ValueError, TypeError, OSError) as exc:  # not an address, or a corrupt data section
        log.warning("GeoIP lookup failed: %s", exc)
        return Place()
    if not isinstance(record, dict):
        return Place()
    subdivisions = record.get("subdivisions")
    region = subdivisions[0] if isinstance(subdivisions, list) and subdivisions else record.get("region")
    return Place(_name(record.get("country")), _name(region), _name(record.get("city")))


# --- writing ----------------------------------------------------------------------------------


def _visitor(session: Session, visitor_id: int | None) -> Visitor:
    visitor = session.get(Visitor, visitor_id) if isinstance(visitor_id, int) else None
    if visitor is None:
        raise NotFound({"visitor": [str(_l("No such visitor."))]})
    return visitor


def record_connection(session: Session, visitor_id: int, *, ip: str | None, user_agent: str | None,
                      language: object = None, screen: object = None, geoip_db: str | None = None,
                      truncate: bool = True) -> Visitor:
    """Store what a new connection tells about the visitor: browser, OS, device, language, screen,
    place and address (truncated when *truncate*). An invalid language or screen is left out. Commits.

    Raises ``NotFound`` for an unknown visitor.
    """
    visitor = _visitor(session, visitor_id)
    client = parse_user_agent(user_agent)
    visitor.user_agent = _clip(user_agent, 500)
    visitor.browser, visitor.os, visitor.device = client.browser, client.os, client.device
    visitor.language = language.strip() if isinstance(language, str) and _LANGUAGE.match(language.strip()) \
        and len(language.strip()) <= 35 else None
    if valid_screen(screen):
        visitor.screen = screen
    place = locate(ip, geoip_db)
    visitor.country, visitor.region, visitor.city = place.country, place.region, place.city
    visitor.ip = truncate_ip(ip) if truncate else _clip(ip, 45)
    session.commit()
    return visitor


def _validate_page_view(data: object) -> tuple[str, str | None, str | None, str | None]:
    if not isinstance(data, dict):
        raise ValidationFailed({"_": [str(_l("A page view is an object with url, title and referrer."))]})
    errors: dict[str, list[str]] = {}
    url, title, referrer, screen = data.get("url"), data.get("title"), data.get("referrer"), data.get("screen")
    if not isinstance(url, str) or len(url.strip()) > MAX_URL or not _http_url(url.strip()):
        errors["url"] = [str(_l("The page address is an http(s) URL of at most %(n)d characters.", n=MAX_URL))]
    if title is not None and (not isinstance(title, str) or len(title) > MAX_TITLE):
        errors["title"] = [str(_l("The title has at most %(n)d characters.", n=MAX_TITLE))]
    if referrer is not None and (not isinstance(referrer, str) or len(referrer.strip()) > MAX_REFERRER
                                 or any(ord(c) < 32 for c in referrer.strip())):
        errors["referrer"] = [str(_l("The referrer is an address of at most %(n)d characters, or empty.",
                                     n=MAX_REFERRER))]
    if screen is not None and not valid_screen(screen):
        errors["screen"] = [str(_l("The screen size looks like 1920x1080."))]
    if errors:
        raise ValidationFailed(errors)
    return url.strip(), _clip(title, MAX_TITLE), (referrer or "").strip() or None, screen


def record_page_view(session: Session, visitor_id: int | None, data: object,
                     now: datetime | None = None) -> PageView:
    """Store a page view ``{url, title?, referrer?, screen?}`` of the visitor's current visit and make
    it their current page (access trail 访问轨迹), with its search engine, keyword and UTM parameters.
    Commits.

    Raises ``ValidationFailed`` (bad payload; nothing written) and ``NotFound`` (unknown visitor).
    """
    url, title, referrer, screen = _validate_page_view(data)
    visitor = _visitor(session, visitor_id)
    now = now or utcnow()
    engine, keyword = parse_referrer(referrer)
    view = PageView(visitor_id=visitor.id, visit_no=visitor.visits, url=url, title=title, referrer=referrer,
                    search_engine=engine, keyword=keyword, started_at=now, last_seen_at=now, seconds=0,
                    **parse_utm(url))
    session.add(view)
    visitor.current_url, visitor.current_title = url, title
    visitor.page_views = (visitor.page_views or 0) + 1
    visitor.last_seen_at, visitor.online = now, True
    if screen is not None:
        visitor.screen = screen
    session.commit()
    return view


def check_heartbeat(data: object) -> int | None:
    """A heartbeat's payload is an object, empty or with the ``page_view_id`` of the page being
    viewed (a widget that reconnected names the page its earlier connection recorded). Returns that
    id or ``None``. Raises ``ValidationFailed``."""
    if data is not None and not isinstance(data, dict):
        raise ValidationFailed({"_": [str(_l("A heartbeat is an empty object."))]})
    page_view_id = (data or {}).get("page_view_id")
    if page_view_id is None:
        return None
    if isinstance(page_view_id, bool) or not isinstance(page_view_id, int) or page_view_id < 1:
        raise ValidationFailed({"page_view_id": [str(_l("page_view_id is a whole number."))]})
    return page_view_id


def heartbeat(session: Session, visitor_id: int | None, page_view_id: int | None = None,
              now: datetime | None = None) -> PageView | None:
    """Credit the time since the page view was last seen (at most ``HEARTBEAT_CAP`` seconds) to its
    time on page. *page_view_id* is the connection's page view; without one, the visitor's latest.
    Returns the page view, or ``None`` when the visitor has none yet. Commits.

    Raises ``NotFound`` for an unknown visitor.
    """
    visitor = _visitor(session, visitor_id)
    now = now or utcnow()
    query = select(PageView).where(PageView.visitor_id == visitor.id)
    query = query.where(PageView.id == page_view_id) if page_view_id else \
        query.order_by(PageView.started_at.desc(), PageView.id.desc()).limit(1)
    # The row lock keeps two beats racing on two processes from both crediting the same seconds.
    view = session.scalar(query.with_for_update().execution_options(populate_existing=True))
    visitor.last_seen_at = now
    if view is not None:
        elapsed = (now - view.last_seen_at).total_seconds()
        if elapsed > HEARTBEAT_CAP:
            view.seconds += HEARTBEAT_CAP
            view.last_seen_at = now
        elif elapsed >= 1:
            # Whole seconds only; the fraction left over counts towards the next beat.
            view.seconds += int(elapsed)
            view.last_seen_at = view.last_seen_at + timedelta(seconds=int(elapsed))
    session.commit()
    return view


# --- reading ----------------------------------------------------------------------------------


def seconds_on_page(view: PageView, now: datetime) -> float:
    """The time on the page at *now*: the seconds heartbeats credited plus those since the page was
    last seen, at most ``BEAT_SLACK`` of them (a page whose beats stopped, closed or hidden, stops
    counting)."""
    since = (now - view.last_seen_at).total_seconds()
    return view.seconds + min(max(since, 0.0), BEAT_SLACK)


def visitor_payload(visitor: Visitor, include_ip: bool = False) -> dict:
    """The visitor as agents see them (``visitor_update`` event, the online list); the address only
    when *include_ip* (never while addresses are truncated)."""
    payload = {
        "id": visitor.id, "uid": visitor.uid, "site_id": visitor.site_id, "online": visitor.online,
        "current_url": visitor.current_url, "current_title": visitor.current_title,
        "visits": visitor.visits, "page_views": visitor.page_views,
        "first_seen_at": utc_iso(visitor.first_seen_at), "last_seen_at": utc_iso(visitor.last_seen_at),
        "browser": visitor.browser, "os": visitor.os, "device": visitor.device,
        "language": visitor.language, "screen": visitor.screen,
        "country": visitor.country, "region": visitor.region, "city": visitor.city,
        "external_user_id": visitor.external_user_id, "name": visitor.name,
    }
    if include_ip:
        payload["ip"] = visitor.ip
    return payload


@dataclass(frozen=True)
class TrailEntry:
    """One page of the access trail, with its time on page in seconds."""

    id: int
    visit_no: int
    url: str
    title: str | None
    referrer: str | None
    search_engine: str | None
    keyword: str | None
    utm: dict[str, str | None]
    started_at: datetime
    seconds: int

    def as_dict(self) -> dict:
        return {"id": self.id, "visit_no": self.visit_no, "url": self.url, "title": self.title,
                "referrer": self.referrer, "search_engine": self.search_engine, "keyword": self.keyword,
                **self.utm, "started_at": utc_iso(self.started_at), "seconds": self.seconds}


def _entry(view: PageView) -> TrailEntry:
    return TrailEntry(view.id, view.visit_no, view.url, view.title, view.referrer, view.search_engine,
                      view.keyword, {field: getattr(view, field) for field in UTM_FIELDS}, view.started_at,
                      view.seconds)


def visit_trail(session: Session, visitor_id: int, limit: int = 200) -> list[TrailEntry]:
    """The visitor's page views, newest first, each with its time on page. Raises ``NotFound``."""
    _visitor(session, visitor_id)
    views = session.scalars(select(PageView).where(PageView.visitor_id == visitor_id)
                            .order_by(PageView.started_at.desc(), PageView.id.desc()).limit(limit))
    return [_entry(view) for view in views]


def online_visitors(session: Session, site_ids: list[int] | set[int] | tuple[int, ...], include_ip: bool = False,
                    limit: int = 500, where: ColumnElement[bool] | None = None) -> list[dict]:
    """The visitors online on *site_ids* (and meeting *where*, a condition on ``Visitor``) for the
    console's live list, latest activity first: the visitor's fields, ``seconds_on_site`` (time on
    page summed over the current visit) and ``source`` (the current visit's first page view:
    referrer, search engine, keyword, UTM). Three queries."""
    ids = [site_id for site_id in site_ids if isinstance(site_id, int)]
    if not ids:
        return []
    stmt = select(Visitor).where(Visitor.site_id.in_(ids), Visitor.online.is_(True))
    if where is not None:
        stmt = stmt.where(where)
    visitors = list(session.scalars(stmt.order_by(Visitor.last_seen_at.desc(), Visitor.id.desc()).limit(limit)))
    if not visitors:
        return []
    current_visit = and_(PageView.visitor_id == Visitor.id, PageView.visit_no == Visitor.visits)
    totals = {row.visitor_id: (row.seconds, row.first_id) for row in session.execute(
        select(PageView.visitor_id, func.sum(PageView.seconds).label("seconds"),
               func.min(PageView.id).label("first_id"))
        .join(Visitor, current_visit).where(Visitor.id.in_([v.id for v in visitors]))
        .group_by(PageView.visitor_id))}
    firsts = {view.visitor_id: view for view in session.scalars(
        select(PageView).where(PageView.id.in_([first for _, first in totals.values()])))} if totals else {}
    rows = []
    for visitor in visitors:
        first = firsts.get(visitor.id)
        rows.append({
            **visitor_payload(visitor, include_ip),
            "seconds_on_site": int(totals.get(visitor.id, (0, None))[0] or 0),
            "source": {"referrer": first.referrer, "search_engine": first.search_engine, "keyword": first.keyword,
                       **{field: getattr(first, field) for field in UTM_FIELDS}} if first else None,
        })
    return rows
