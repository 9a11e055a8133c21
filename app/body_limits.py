"""Request bodies are bounded before anything reads them; one over its limit answers 413.

- Each endpoint that takes uploads has its own limit (``BODY_LIMITS``: the voucher import takes
  ``IMPORT_MAX_BYTES``, a chat file ``CHAT_UPLOAD_MAX_BYTES``, a filing's evidence
  ``UPLOAD_MAX_BYTES``, plus room for the multipart envelope); every other request
  ``MAX_CONTENT_LENGTH``.
- The limit is checked as the URL is matched, before the CSRF check, the form parser or the view
  run: a declared ``Content-Length`` over it is refused without reading a byte; a chunked body is
  read here, up to the limit. So the answer is a 413 even for views under Flask-AppBuilder's
  ``@safe``, which would turn the ``RequestEntityTooLarge`` raised inside them into a 500.
- The 413 is JSON (``{"message": ...}``) on the JSON faces (``/api/``, ``/reports/``,
  ``/chat/files``) and an HTML page elsewhere.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template_string, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

ENVELOPE = 64 * 1024  # multipart boundaries, headers and the small form fields around the file
BODY_LIMITS = {  # endpoint → config key of its file limit
    "VoucherApi.import_vouchers": "IMPORT_MAX_BYTES",
    "VoucherImportView.index": "IMPORT_MAX_BYTES",
    "chat_files.upload": "CHAT_UPLOAD_MAX_BYTES",
    "TaxFilingView.file": "UPLOAD_MAX_BYTES",  # the 申报表 archived with the step
    "TaxFilingView.pay": "UPLOAD_MAX_BYTES",  # the 缴款凭证
}
JSON_PREFIXES = ("/api/", "/reports/", "/chat/files")
_PAGE = """<!DOCTYPE html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>413 {{ title }}</title></head>
<body><h1>{{ title }}</h1><p>{{ text }}</p><p><a href="javascript:history.back()">{{ back }}</a></p></body></html>"""


def body_limit(app: Flask, endpoint: str | None) -> int | None:
    """The most bytes a request to *endpoint* may send (``None``: no limit configured)."""
    key = BODY_LIMITS.get(endpoint or "")
    if key and app.config.get(key):
        return int(app.config[key]) + ENVELOPE
    return app.config.get("MAX_CONTENT_LENGTH")


def too_large() -> tuple[Response, int] | tuple[str, int]:
    """The 413 answer for the current request (JSON or HTML by its face)."""
    text = str(_l("The request is too large: send a smaller file."))
    if request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == "application/json":
        return jsonify(message=text), 413
    lang = str(get_locale() or "zh_CN").replace("_", "-")
    page = render_template_string(_PAGE, lang=lang, title=str(_l("Too large")), text=text, back=str(_l("Back")))
    return page, 413


def install(app: Flask) -> None:
    """Check every request body against its endpoint's limit; answer 413 in one place."""

    @app.url_value_preprocessor
    def _bound_the_body(endpoint: str | None, values: dict | None) -> None:  # noqa: ARG001
        limit = body_limit(app, endpoint)
        if limit is None:
            return
        request.max_content_length = limit
        length = request.content_length
        if length is not None and length > limit:
            raise RequestEntityTooLarge()
        if length is None and request.environ.get("wsgi.input_terminated"):
            request.get_data(cache=True, parse_form_data=False)  # chunked: read here, up to the limit

    app.register_error_handler(RequestEntityTooLarge, lambda exc: too_large())
