"""The OpenAPI document says what the server answers: every error status and its body.

FastAPI declares 422 for validation, but the bot answers 400 with ``{"error": "..."}`` (see
``bot.server``); refusals (401, 403), missing things (404), conflicts (409), bodies over
``BOT_MAX_BODY_BYTES`` (413) and an unreachable database (503) are answered by handlers and
middleware the generated document cannot see. ``declare_errors`` adds them after generation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, BeforeValidator, Field

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"error": {"type": "string", "description": "what is wrong, in words"}},
    "required": ["error"],
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

REASONS = {
    400: "the request is malformed: a parameter or body field is invalid (named in the error)",
    401: "no valid credentials",
    403: "the caller's role does not allow this, or a cross-site request",
    404: "no such incident, run, silence, playbook or category",
    409: "the change conflicts with the current state (a stale version, a run already decided)",
    413: "the request body is larger than BOT_MAX_BODY_BYTES",
    429: "over the rate limit; see Retry-After",
    503: "the database is unavailable (Retry-After) or a dependency failed for now",
}
#: the largest id, offset or cursor a request may carry (fits every database's integer)
MAX_INT = 2**31 - 1
#: what ``bot.domain.durations.parse_duration`` reads (30s, 5m, 1h30m, 1d, plain seconds), short
#: enough never to overflow
DURATION_PATTERN = (
    r"^ *([0-9]{1,12}(\.[0-9]{1,9})?|([0-9]{1,6}(\.[0-9]{1,9})?([mM][sS]|[sSmMhHdDwW]) *)+)$"
)
_GO_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}
#: Alertmanager answers 400 with its error text as a JSON string, or go-swagger's error object;
#: a query parameter of the wrong type gets the bot's own error
ALERTMANAGER_400: dict[str, Any] = {"anyOf": [{"type": "string"}, _GO_ERROR, ERROR_REF]}
ALERTMANAGER_422: dict[str, Any] = _GO_ERROR
WRITES = ("post", "put", "patch", "delete")
#: routes that keep a protocol's own error answers (Alertmanager API v2, Splunk's alert action)
FOREIGN = ("/api/v2/", "/webhooks/")


def _not_a_number(value: Any) -> Any:
    """pydantic reads ``1.5`` as seconds since 1970; the document says an ISO 8601 date-time."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9.]+\s*", value)
    ):
        raise ValueError("use an ISO 8601 date-time, e.g. 2026-11-22T10:00:00Z")
    return value


#: a date-time parameter or field: ISO 8601 text only
Timestamp = Annotated[datetime, BeforeValidator(_not_a_number)]


def matching(pattern: str, problem: str) -> Callable[[str], str]:
    """A validator (``AfterValidator``) refusing text that does not match ``pattern`` with
    ``problem`` (``{!r}`` is the value): declare the same pattern with ``declared``."""
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if not compiled.fullmatch(text):
            raise ValueError(problem.format(text))
        return text

    return check


def declared(pattern: str, max_length: int) -> Any:
    """The ``Field`` that states ``pattern`` in the document (checked by ``matching``)."""
    return Field(max_length=max_length, json_schema_extra={"pattern": pattern})


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself, validated by ``model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _error(code: int) -> dict[str, Any]:
    return {"description": REASONS[code], "content": {"application/json": {"schema": ERROR_REF}}}


def _codes(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses the server can answer for this operation."""
    if path.startswith("/api/v1/"):
        codes = [400, 401, 403, 503]
        names = {p.get("name") for p in operation.get("parameters", [])}
        if "{" in path or method in WRITES or "incident" in names:
            codes.append(404)
        if method in WRITES:
            codes += [409, 413]
        return codes
    codes = [401]  # every foreign route asks for a sender's credentials
    if path.startswith("/api/"):
        codes.append(503)  # the database gate covers every /api/ path
    if method in WRITES:
        codes.append(413)
    if operation.get("parameters") or "requestBody" in operation:
        codes.append(400)
    return codes


def document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    _hoist_definitions(schema, components)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            foreign = path.startswith(FOREIGN)
            # Alertmanager's own API answers 422 for a missing body; the bot's answers 400
            validation = responses.get("422") if foreign else responses.pop("422", None)
            for code in _codes(path, method, operation):
                if foreign and str(code) in responses:
                    continue  # the protocol's own description stays
                responses[str(code)] = _error(code)
            if foreign and validation is not None and "400" not in responses:
                responses["400"] = _error(400)
            if path.startswith("/api/v2/"):  # go-swagger's answers, as Alertmanager writes them
                for status, body in (("400", ALERTMANAGER_400), ("422", ALERTMANAGER_422)):
                    if status in responses:
                        responses[status]["content"] = {"application/json": {"schema": body}}
    metrics = schema.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    ready = schema.get("paths", {}).get("/ready", {}).get("get")
    if ready is not None:
        ready["responses"]["503"] = {
            "description": "not ready: the report names the failing check",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    # the HTTP validation schemas FastAPI adds for 422 are no longer referenced
    for name in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(name, None)
    return schema


def _hoist_definitions(node: Any, components: dict[str, Any]) -> Any:
    """Move pydantic's ``$defs`` (in ``openapi_extra`` bodies) into the shared components: a
    ``#/$defs/...`` reference means nothing at the document's root."""
    if isinstance(node, list):
        return [_hoist_definitions(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    for name, definition in node.pop("$defs", {}).items():
        components.setdefault(name, _hoist_definitions(definition, components))
    for key, value in list(node.items()):
        if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
            node[key] = "#/components/schemas/" + value.removeprefix("#/$defs/")
        else:
            node[key] = _hoist_definitions(value, components)
    return node


def declare_errors(app: FastAPI) -> None:
    """Serve the completed document at ``app.openapi_url`` (built once, on first request)."""
    built: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not built:
            built.update(document(app))
        return built

    setattr(app, "openapi", openapi)  # noqa: B010  FastAPI's documented override
