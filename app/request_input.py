"""What a request may carry, checked before a view reads it, so that odd input is a clear 4xx
and never a server error.

Rules:
- An ``<int:...>`` part of a URL is 1 to 10 ASCII digits and at most ``MAX_ID`` (the largest
  value of an INTEGER column on PostgreSQL; SQLite's limit is higher). Anything else, ``²`` and
  ``٣`` included, does not match, so the answer is 404 — as for an id that does not exist.
- A JSON body is nested at most ``MAX_JSON_DEPTH`` levels. A deeper one is not JSON the desk
  reads: it parses as invalid (Flask's 400, or ``None`` for a view that reads it silently),
  never a ``RecursionError``.
- No text of a request (its path, query, form fields, file names and JSON strings and keys)
  may hold the NUL character, which PostgreSQL cannot store: such a request is refused with 400
  before any view runs, ``{"message", "errors": {field: [...]}}`` on the JSON faces.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, ValidationError

from app.services.inputs import MAX_DEPTH, MAX_ID, hostile_part

MAX_JSON_DEPTH = MAX_DEPTH
JSON_PREFIXES = ("/api/", "/reports/", "/chat/")


class IdConverter(IntegerConverter):
    """``<int:pk>``: ASCII digits only, at most ``MAX_ID``; anything else is no match (404)."""

    # 1 to 2147483647 as a regular expression: a larger number must not match the path at all,
    # or werkzeug answers 405 when another method's rule has the same path.
    regex = (r"(?:[0-9]{1,9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
             r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])")

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValidationError()
        return number


class JsonInput(DefaultJSONProvider):
    """Flask's JSON, reading bodies that nest too deeply as invalid JSON (a ``ValueError``)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            data = json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        if hostile_part(data) == "depth":
            raise ValueError("JSON nested too deeply")
        return data


def _nul_field() -> str | None:
    """The first part of the request whose text holds a NUL character, or ``None``."""
    if "\x00" in request.path:
        return "_"
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            if any(isinstance(text, str) and "\x00" in text for text in (key, value)):
                return str(key).replace("\x00", "")
    for key, upload in request.files.items(multi=True):
        if "\x00" in str(key) or "\x00" in (upload.filename or ""):
            return str(key).replace("\x00", "")
    if request.is_json:
        try:
            data = request.get_json(silent=True)
        except BadRequest:
            return None
        found = hostile_part(data) if data is not None else None
        if found not in (None, "depth"):
            return found
    return None


def _refuse_nul() -> Response | None:
    field = _nul_field()
    if field is None:
        return None
    message = str(_l("Text may not contain the NUL character."))
    if request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == "application/json":
        response = jsonify(message=message, errors={field: [message]})
        response.status_code = 400
        return response
    raise BadRequest(message)


def install(app: Flask) -> None:
    """Use the strict ``int`` converter for every URL and the guarded JSON reader, and refuse
    requests carrying a NUL character. Call before any route is registered."""
    app.url_map.converters["int"] = IdConverter
    app.json_provider_class = JsonInput
    app.json = JsonInput(app)
    app.before_request(_refuse_nul)
