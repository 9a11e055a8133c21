"""The OpenAPI document (``/api/v1/_openapi``) says what the API really answers.

Flask-AppBuilder writes most of it from its own docstrings and the models; where that text
disagrees with the answers, the document is corrected here, in one place, as it is served:

- every operation may answer 400 (a malformed request, a NUL character); one that needs a token
  401 and 403; one that writes 409 (the state of the data refuses it) and, with a body, 413;
  every error answer is the one shape ``{"message", "errors"}``
  (``app/errors.py``); the database being unavailable is a 503;
- a list's ``ids`` and the ``id`` of a created row (201) are integers; ``_info``'s ``add_columns``
  and ``edit_columns`` are lists;
- money travels as strings (``DeskApi.money_fields``), not numbers; an optional amount may be null;
- a menu entry is an object, or ``"-"`` for a separator.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, current_app, request

_ERROR_REF = {"$ref": "#/components/responses/%s"}
_ALWAYS = ("400", "500", "503")
_COLUMN_LIST = {"type": "array", "items": {"type": "object"}}


def _operations(spec: dict):  # noqa: ANN202
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            if method in ("get", "post", "put", "delete", "patch") and isinstance(operation, dict):
                yield path, method, operation


def _walk(node: Any, visit) -> None:  # noqa: ANN001
    """Call ``visit(schema)`` on every schema object inside *node*."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            visit(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _fix_schema(schema: dict) -> None:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    ids = properties.get("ids")
    if isinstance(ids, dict) and ids.get("type") == "array":
        ids["items"] = {"type": "integer"}
    item_id = properties.get("id")
    if isinstance(item_id, dict) and item_id.get("type") == "string" and item_id.get("description") == "The item id":
        item_id["type"] = "integer"
    for name in ("add_columns", "edit_columns"):
        if isinstance(properties.get(name), dict) and properties[name].get("type") == "object":
            properties[name] = dict(_COLUMN_LIST)
    childs = properties.get("childs")
    if isinstance(childs, dict) and childs.get("type") == "array":
        childs["items"] = {"oneOf": [{"type": "object"}, {"type": "string", "enum": ["-"]}]}


def _money_as_strings(spec: dict, app: Flask) -> None:
    schemas = spec.get("components", {}).get("schemas", {})
    for api in app.appbuilder.baseviews:
        money = getattr(api, "money_fields", ())
        if not money:
            continue
        for name, schema in schemas.items():
            if name.split(".")[0] != type(api).__name__:
                continue
            for field in money:
                prop = schema.get("properties", {}).get(field)
                if isinstance(prop, dict):
                    nullable = prop.get("nullable")  # an optional amount (a threshold) may be null
                    prop.clear()
                    prop.update({"type": "string", "example": "500.00", "description": "an amount with two decimals"})
                    if nullable:
                        prop["nullable"] = True


def correct(spec: dict, app: Flask) -> dict:
    """The document with the corrections of the module docstring applied (in place)."""
    for _path, _method, operation in _operations(spec):
        responses = operation.setdefault("responses", {})
        codes = list(_ALWAYS)
        if operation.get("security", spec.get("security")):
            codes += ["401", "403"]  # no or a bad token; a role without the permission
        if _method in ("post", "put", "delete"):
            codes.append("409")  # the state of the data refuses it (a live contract, a client with books)
        if _method in ("post", "put"):
            codes.append("413")  # the body is over its limit
        for code in codes:
            responses.setdefault(code, {"$ref": _ERROR_REF["$ref"] % code})
        created = responses.get("201", {}).get("content", {}).get("application/json", {}).get("schema", {})
        created_id = created.get("properties", {}).get("id") if isinstance(created, dict) else None
        if isinstance(created_id, dict) and created_id.get("type") == "string":
            created_id["type"] = "integer"
    _walk(spec.get("paths", {}), _fix_schema)
    _walk(spec.get("components", {}).get("schemas", {}), _fix_schema)
    _money_as_strings(spec, app)
    return spec


def _correct_response(response: Response) -> Response:
    if request.endpoint != "OpenApi.get" or response.status_code != 200 or not response.is_json:
        return response
    spec = correct(response.get_json(), current_app)
    response.set_data(json.dumps(spec, ensure_ascii=False))
    return response


def install(app: Flask) -> None:
    """Serve the corrected document."""
    app.after_request(_correct_response)
