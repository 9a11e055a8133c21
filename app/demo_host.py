"""The demo host page (演示网站): a tiny fake agency website on another origin that embeds the chat
widget, so a visitor and an agent can be tried side by side. ``run.py`` serves it on
``DEMO_HOST_PORT`` (default 5001; 0 turns it off).

Two pages (``/`` and ``/services.html``) so that page tracking has something to show; anything else
is 404. The desk's URL and the site key are fixed when the app is made; every value in the pages
is escaped by Jinja.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.wrappers import Request, Response

TEMPLATES = Path(__file__).resolve().parent / "templates" / "demo_host"
PAGES = {"/": ("index.html", "home"), "/index.html": ("index.html", "home"),
         "/services.html": ("services.html", "services")}


def make_demo_host(desk_url: str, site_key: str) -> Callable[[dict, Callable], Iterable[bytes]]:
    """A WSGI app serving the demo pages with the widget snippet for *site_key* from *desk_url*."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    desk_url = desk_url.rstrip("/")
    snippet = f'<script src="{desk_url}/widget.js" data-site="{site_key}" async></script>'

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        found = PAGES.get(request.path)
        if request.method not in ("GET", "HEAD"):
            response = Response("method not allowed", status=405, mimetype="text/plain")
        elif found is None:
            response = Response("页面不存在 / not found", status=404, mimetype="text/plain")
        else:
            template, page = found
            html = env.get_template(template).render(desk_url=desk_url, site_key=site_key, snippet=snippet,
                                                     page=page)
            response = Response(html, mimetype="text/html")
            response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    return app


def browser_host(host: str) -> str:
    """The address a browser on this machine uses for a server bound to *host*."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - mapping, not binding
