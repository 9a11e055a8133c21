"""Quick links (常用链接): titled addresses agents insert into a reply with one click, as they insert
canned replies (``app.services.chat_tools``).

Rules:
- A link has a title of 1 to ``MAX_TITLE`` characters and an address of at most ``MAX_URL``: an
  absolute ``http`` or ``https`` URL with a host, without blanks or control characters (no
  ``javascript:``, ``data:`` or relative addresses: the visitor may click it). It belongs to a
  site (an existing one) or, blank, to every site; a sort order (a whole number, 0 or more; lower
  first) and an active flag.
- Agents see the active links of the sites they serve and those for every site; a supervisor
  every active link. Asked for one chat's site, only that site's links and those for every site.
- The list is kept by managers (screen and REST API); every change is in the audit log.
Errors: ``ValidationFailed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.models.chat import ChatSite
from app.models.chat_topics import QuickLink
from app.services.chat_inbox import escape_like
from app.services.errors import ValidationFailed
from app.services.inputs import MAX_ID

MAX_TITLE = 100
MAX_URL = 2000
MAX_QUERY = 100
MAX_SORT = 100000
SEARCH_LIMIT = 50


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def url_problem(url: object) -> str | None:
    """Why *url* is not a link a visitor may be sent (see the module rules), translated; ``None``
    when it is one."""
    if not isinstance(url, str) or not url:
        return str(_l("Give the address of the link."))
    if len(url) > MAX_URL:
        return str(_l("At most %(n)d characters.", n=MAX_URL))
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return str(_l("An address has no blanks."))
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return str(_l("An address starting with http:// or https://, e.g. https://www.example.com/price."))
    if parts.scheme.lower() not in ("http", "https") or not host:
        return str(_l("An address starting with http:// or https://, e.g. https://www.example.com/price."))
    return None


def validate_link(session: Session, link: QuickLink) -> None:
    """Check and tidy a quick link before it is stored (does not commit): see the module rules.

    Raises ``ValidationFailed`` with every problem found."""
    errors: dict[str, list[str]] = {}
    link.title = link.title.strip() if isinstance(link.title, str) else link.title
    link.url = link.url.strip() if isinstance(link.url, str) else link.url
    if link.active is None:
        link.active = True
    if link.sort_order is None:
        link.sort_order = 100
    if not isinstance(link.title, str) or not link.title:
        errors["title"] = [str(_l("A link needs a title."))]
    elif len(link.title) > MAX_TITLE or any(ord(c) < 32 for c in link.title):
        errors["title"] = [str(_l("A title of 1 to %(n)d characters.", n=MAX_TITLE))]
    if problem := url_problem(link.url):
        errors["url"] = [problem]
    site_id = link.site_id if link.site_id is not None else getattr(link.site, "id", None)
    if site_id is not None and (not _is_int(site_id) or not 1 <= site_id <= MAX_ID
                                or session.get(ChatSite, site_id) is None):
        errors["site_id"] = [str(_l("There is no record with id %(id)s.", id=site_id))]
    if not _is_int(link.sort_order) or not 0 <= link.sort_order <= MAX_SORT:
        errors["sort_order"] = [str(_l("A whole number from 0 to %(n)d.", n=MAX_SORT))]
    if not isinstance(link.active, bool):
        errors["active"] = [str(_l("Must be true or false."))]
    if errors:
        raise ValidationFailed(errors)


def link_payload(link: QuickLink) -> dict:
    """A quick link as the console receives it."""
    return {"id": link.id, "title": link.title, "url": link.url, "site_id": link.site_id}


def search_links(session: Session, site_ids: Iterable[int] | None, site_id: int | None = None,
                 q: object = None, limit: int = SEARCH_LIMIT) -> list[QuickLink]:
    """The active links a user may insert: of *site_ids* (``None``: every site) and for every site;
    with *site_id* (one chat's site, which must be among them) only that site's and those for
    every site; with *q* those whose title or address contains it. Site links first, then by sort
    order and title. Raises ``ValidationFailed`` when *q* is not text of at most ``MAX_QUERY``."""
    if q is not None and (not isinstance(q, str) or len(q) > MAX_QUERY):
        raise ValidationFailed({"q": [str(_l("At most %(n)d characters.", n=MAX_QUERY))]})
    allowed = None if site_ids is None else set(site_ids)
    if site_id is not None:
        allowed = {site_id} if allowed is None or site_id in allowed else set()
    query = select(QuickLink).where(QuickLink.active.is_(True))
    if allowed is not None:
        query = query.where(or_(QuickLink.site_id.is_(None), QuickLink.site_id.in_(sorted(allowed) or [0])))
    text = (q or "").strip().lower()
    if text:
        pattern = f"%{escape_like(text)}%"
        query = query.where(or_(func.lower(QuickLink.title).like(pattern, escape="\\"),
                                func.lower(QuickLink.url).like(pattern, escape="\\")))
    query = query.order_by(QuickLink.site_id.is_(None), QuickLink.sort_order, QuickLink.title, QuickLink.id)
    return list(session.scalars(query.limit(limit)))
