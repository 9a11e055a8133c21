"""Chat sites: keys, allowed origins, the embed snippet, visitor identity, blocks, business hours.

Rules:
- A site has a public ``site_key`` (in the snippet) and a private ``identity_secret``; both are
  random and can be regenerated.
- Allowed origins are exact ``scheme://host[:port]`` values, one per line; ``https://*.example.com``
  allows the subdomains of example.com (not example.com itself — list it too if wanted). A
  connection whose Origin is not listed is refused.
- The visitor token is the visitor id signed with the application's secret, so returning
  visitors are recognised and cannot forge someone else's id.
- Identity verification: the host site passes ``user_id`` and ``HMAC-SHA256(identity_secret, user_id)``
  in hex; a wrong hash is refused.
- Blocks match a visitor id or an IP address / CIDR range, on one site or all, until they expire.
- Business hours: lines like ``mon-fri 09:00-18:00`` or ``sat 10:00-12:00`` in the display time
  zone; blank means always open.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.models.base import utcnow
from app.models.chat import ChatBlock, ChatSite
from app.services.errors import ValidationFailed

_HOST = re.compile(r"^(\*\.)?([a-z0-9-]+(\.[a-z0-9-]+)*)$")
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_LINE = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*)\s+"
                         r"(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$")


def new_site_key() -> str:
    return secrets.token_urlsafe(18)


def new_identity_secret() -> str:
    return secrets.token_hex(32)


# --- origins --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginRule:
    scheme: str
    host: str  # without the "*." of a wildcard
    port: int | None
    wildcard: bool

    def matches(self, origin: str) -> bool:
        parts = _split_origin(origin)
        if parts is None:
            return False
        scheme, host, port = parts
        if scheme != self.scheme or port != self.port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _split_origin(origin: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname.lower(), port or _default_port(parts.scheme)


def parse_origin_rules(text: str | None) -> list[OriginRule]:
    """Parse the allowed-origins field; raises ``ValidationFailed`` naming each bad line."""
    rules, errors = [], []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        value = raw.strip()
        if not value:
            continue
        wildcard = "://*." in value
        parts = _split_origin(value.replace("://*.", "://wildcard.", 1) if wildcard else value)
        host = parts[1].removeprefix("wildcard.") if parts and wildcard else (parts[1] if parts else "")
        if parts is None or not _HOST.match(host) or "*" in host:
            errors.append(str(_l("Line %(n)d: %(value)s is not an origin like https://www.example.com "
                                 "or https://*.example.com.", n=number, value=value)))
            continue
        rules.append(OriginRule(parts[0], host, parts[2], wildcard))
    if errors:
        raise ValidationFailed({"allowed_origins": errors})
    return rules


def origin_allowed(site: ChatSite, origin: str | None) -> bool:
    """Whether a browser page at *origin* may use the widget of *site* (an active site only)."""
    if not site.active or not origin:
        return False
    try:
        rules = parse_origin_rules(site.allowed_origins)
    except ValidationFailed:
        return False
    return any(rule.matches(origin) for rule in rules)


# --- validation and creation ------------------------------------------------------------------


def validate_site(site: ChatSite) -> None:
    """Check a site's fields before saving (a blank auto-reply delay becomes the default 60 s);
    raises ``ValidationFailed`` by field."""
    errors: dict[str, list[str]] = {}
    if not (site.name or "").strip():
        errors["name"] = [str(_l("The site needs a name."))]
    try:
        parse_origin_rules(site.allowed_origins)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if site.theme_color and not _HEX_COLOUR.match(site.theme_color):
        errors["theme_color"] = [str(_l("A colour is written #RRGGBB, for example #1677ff."))]
    try:
        parse_business_hours(site.business_hours)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if site.auto_reply_seconds is None:
        site.auto_reply_seconds = 60
    seconds = site.auto_reply_seconds
    if (isinstance(seconds, bool) or not isinstance(seconds, int)
                                or not 0 <= seconds <= 3600):
        errors["auto_reply_seconds"] = [str(_l("Between 0 and 3600 seconds (0: no auto reply)."))]
    if errors:
        raise ValidationFailed(errors)


def prepare_new_site(site: ChatSite) -> ChatSite:
    """Give a new site its keys (and the default colour) before it is first saved."""
    site.site_key = site.site_key or new_site_key()
    site.identity_secret = site.identity_secret or new_identity_secret()
    site.theme_color = site.theme_color or "#1677ff"
    return site


def regenerate_keys(session: Session, site: ChatSite) -> ChatSite:
    """New site key and identity secret: the old snippet and hashes stop working. Commits."""
    site.site_key = new_site_key()
    site.identity_secret = new_identity_secret()
    session.commit()
    return site


def snippet(site: ChatSite, base_url: str) -> Markup:
    """The one line a web master pastes before ``</body>``."""
    src = base_url.rstrip("/") + "/widget.js"
    return Markup('<script src="{}" data-site="{}" async></script>').format(src, site.site_key)


# --- visitor identity -----------------------------------------------------------------------


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="chat-visitor")


def visitor_token(secret_key: str, site_key: str, uid: str) -> str:
    """The signed token the widget keeps; it names the visitor on one site."""
    return _serializer(secret_key).dumps({"s": site_key, "v": uid})


def visitor_uid_from_token(secret_key: str, site_key: str, token: str | None) -> str | None:
    """The visitor id in *token* when it is genuine and for *site_key*, else None."""
    if not token or not isinstance(token, str) or len(token) > 300:
        return None
    try:
        data = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("s") != site_key or not isinstance(data.get("v"), str):
        return None
    return data["v"]


FILE_LINK_MAX_AGE = 7 * 24 * 3600  # seconds a chat file link stays valid (payloads are signed afresh)


def file_link_token(secret_key: str, attachment_id: int) -> str:
    """A signed, expiring capability to download one chat file. Links carry it instead of the
    visitor token, so that no lasting secret ends up in addresses, server logs or histories."""
    return URLSafeTimedSerializer(secret_key, salt="chat-file").dumps(int(attachment_id))


def attachment_id_from_link(secret_key: str, token: object, max_age: int = FILE_LINK_MAX_AGE) -> int | None:
    """The attachment id *token* grants, when genuine and younger than *max_age* seconds, else None."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return None
    try:
        value = URLSafeTimedSerializer(secret_key, salt="chat-file").loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is one
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def new_visitor_uid() -> str:
    return secrets.token_hex(16)


def identity_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()


def verify_identity(site: ChatSite, user_id: object, user_hash: object) -> str | None:
    """The verified *user_id*, or None when no identity was offered.

    Raises ``ValidationFailed`` when a user id comes with a missing or wrong hash.
    """
    if user_id in (None, ""):
        return None
    if not isinstance(user_id, str | int) or len(str(user_id)) > 100:
        raise ValidationFailed({"user_id": [str(_l("Not a valid user id."))]})
    expected = identity_hash(site.identity_secret, str(user_id))
    if not isinstance(user_hash, str) or not hmac.compare_digest(expected, user_hash.lower()):
        raise ValidationFailed({"user_hash": [str(_l("The identity hash does not match the user id."))]})
    return str(user_id)


# --- blocks ---------------------------------------------------------------------------------


def validate_block(block: ChatBlock) -> None:
    errors: dict[str, list[str]] = {}
    if not (block.visitor_uid or "").strip() and not (block.ip_range or "").strip():
        errors["ip_range"] = [str(_l("Block a visitor id, an IP address or a range."))]
    if (block.ip_range or "").strip():
        try:
            ipaddress.ip_network(block.ip_range.strip(), strict=False)
        except ValueError:
            errors["ip_range"] = [str(_l("Not an IP address or CIDR range (e.g. 203.0.113.0/24)."))]
    if errors:
        raise ValidationFailed(errors)


def is_blocked(session: Session, site_id: int, visitor_uid: str | None, ip: str | None,
               now: datetime | None = None) -> bool:
    """Whether a live block matches the visitor id or the IP address on this site (or all sites)."""
    now = now or utcnow()
    blocks = session.scalars(select(ChatBlock).where(
        or_(ChatBlock.site_id.is_(None), ChatBlock.site_id == site_id),
        or_(ChatBlock.expires_at.is_(None), ChatBlock.expires_at > now)))
    address = None
    if ip:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            address = None
    for block in blocks:
        if visitor_uid and block.visitor_uid and block.visitor_uid.strip() == visitor_uid:
            return True
        if address is not None and block.ip_range:
            try:
                if address in ipaddress.ip_network(block.ip_range.strip(), strict=False):
                    return True
            except ValueError:
                continue
    return False


# --- business hours -------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time


def _day_range(text: str) -> set[int]:
    first, _, last = text.partition("-")
    a, b = DAYS.index(first), DAYS.index(last or first)
    return set(range(a, b + 1)) if a <= b else set(range(a, 7)) | set(range(0, b + 1))


def parse_business_hours(text: str | None) -> list[Opening]:
    """Parse the business-hours field; raises ``ValidationFailed`` naming each bad line."""
    openings, errors = [], []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        value = raw.strip().lower()
        if not value:
            continue
        match = _HOURS_LINE.match(value)
        try:
            if not match:
                raise ValueError
            days: set[int] = set()
            for part in match.group("days").split(","):
                days |= _day_range(part)
            start, end = time.fromisoformat(match.group("start").zfill(5)), time.fromisoformat(
                match.group("end").zfill(5))
            if end <= start:
                raise ValueError
        except ValueError:
            errors.append(str(_l("Line %(n)d: write business hours like \"mon-fri 09:00-18:00\".", n=number)))
            continue
        openings.append(Opening(frozenset(days), start, end))
    if errors:
        raise ValidationFailed({"business_hours": errors})
    return openings


def is_open(site: ChatSite, now_utc: datetime, tz: str) -> bool:
    """Whether *site* is within its business hours at *now_utc* (naive UTC) in zone *tz*."""
    try:
        openings = parse_business_hours(site.business_hours)
    except ValidationFailed:
        return True  # a site saved before validation existed: do not lock visitors out
    if not openings:
        return True
    local = now_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz))
    return any(local.weekday() in o.days and o.start <= local.time() < o.end for o in openings)


def same_origin(origin: str | None, host: str) -> bool:
    """Whether a WebSocket's ``Origin`` header (when the browser sent one) names this server: a
    page elsewhere must not open the console's socket with the agent's cookie (cross-site
    WebSocket hijacking)."""
    if not origin:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return bool(netloc) and netloc.lower() == (host or "").lower()
