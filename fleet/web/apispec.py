"""How the reporting API (fleet/web/api.py) declares its endpoints, checks parameters and describes
itself as OpenAPI 3.1: one declaration per endpoint serves the route, its checks, its CSV header and its
part of the document, so the description cannot drift from what is served."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

PREFIX = "/api/v1"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Row = dict[str, Any]


class ApiError(Exception):
    """A request the API refuses: its status and a message for the caller."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Param:
    """A query parameter: its name, what it means and what it takes."""

    name: str
    description: str
    enum: tuple[str, ...] = ()
    format: str | None = None  # "date": YYYY-MM-DD
    default: str | None = None

    def schema(self) -> dict[str, Any]:
        """Its OpenAPI parameter object."""
        s: dict[str, Any] = {"type": "string"}
        if self.enum:
            s["enum"] = list(self.enum)
        if self.format:
            s["format"] = self.format
        if self.default is not None:
            s["default"] = self.default
        return {"name": self.name, "in": "query", "required": False, "description": self.description, "schema": s}

    def parse(self, text: str) -> Any:
        """The value of ``text``, checked; raises ApiError (400) naming the parameter and what it takes."""
        text = text.strip()
        if self.enum and text not in self.enum:
            raise ApiError(400, f"{self.name}: {text[:40]!r} is not allowed; use one of {', '.join(self.enum)}")
        if self.format == "date":
            day = _iso_day(text)
            if day is None:
                raise ApiError(400, f"{self.name}: {text[:40]!r} is not a date; use YYYY-MM-DD, e.g. 2025-03-01")
            return day
        if not text:
            raise ApiError(400, f"{self.name}: give a value, or leave the parameter out")
        return text


def _iso_day(text: str) -> date | None:
    """The day written YYYY-MM-DD, or None (not the other forms fromisoformat takes, such as 20250301)."""
    if not _DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Field:
    """A field of an endpoint's rows (a JSON property and a CSV column)."""

    name: str
    type: str  # a JSON Schema type: string, integer, number, boolean
    description: str
    nullable: bool = False
    format: str | None = None
    enum: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        """Its JSON Schema (OpenAPI 3.1)."""
        s: dict[str, Any] = {"type": [self.type, "null"] if self.nullable else self.type}
        if self.format:
            s["format"] = self.format
        if self.enum:
            s["enum"] = [*self.enum, *([None] if self.nullable else [])]
        s["description"] = self.description
        return s


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: everything the route, the checks, the CSV file and the OpenAPI document need."""

    path: str  # under PREFIX
    name: str  # the Flask endpoint and the OpenAPI operationId
    summary: str
    description: str
    item: str  # the name of its row schema
    params: tuple[Param, ...]
    fields: tuple[Field, ...]
    rows: Callable[[Any], list[Row]]  # the request's context (api.Context) → its rows

    def parse(self, given: Mapping[str, list[str]]) -> dict[str, Any]:
        """The parameters of a request, each checked; unknown or repeated ones are refused (400)."""
        known = {p.name: p for p in self.params}
        out: dict[str, Any] = {}
        for name, values in given.items():
            p = known.get(name)
            if p is None:
                raise ApiError(400, f"{name[:40]}: not a parameter of {PREFIX}{self.path}; it takes {', '.join(known)}")
            if len(values) != 1:
                raise ApiError(400, f"{name}: give it once")
            out[name] = p.parse(values[0])
        for p in self.params:
            if p.default is not None:
                out.setdefault(p.name, p.default)
        return out


_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_response(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": _ERROR}}}


def openapi_document(endpoints: Iterable[Endpoint], info: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``endpoints`` (and of the document itself)."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string", "description": "What was wrong, naming the parameter."}},
        }
    }
    for ep in endpoints:
        schemas[ep.item] = {
            "type": "object",
            "required": [f.name for f in ep.fields],
            "additionalProperties": False,
            "properties": {f.name: f.schema() for f in ep.fields},
        }
        envelope = {
            "type": "object",
            "required": ["parameters", "items"],
            "additionalProperties": False,
            "properties": {
                "parameters": {
                    "type": "object",
                    "description": "The parameters as applied, defaults filled in (node: null for everything).",
                    "properties": {p.name: {"type": ["string", "null"]} for p in ep.params},
                },
                "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ep.item}"}},
            },
        }
        paths[PREFIX + ep.path] = {
            "get": {
                "operationId": ep.name,
                "summary": ep.summary,
                "description": ep.description,
                "parameters": [p.schema() for p in ep.params],
                "responses": {
                    "200": {
                        "description": "The rows (CSV: the same rows, one column per field).",
                        "content": {
                            "application/json": {"schema": envelope},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _error_response("A parameter with a value it does not take, or an unknown parameter."),
                    "401": {
                        **_error_response("No token, or an unknown or revoked one."),
                        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    },
                    "404": _error_response("The node is unknown or outside the token's part of the organisation."),
                },
            }
        }
    paths[PREFIX + "/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This description",
            "security": [],
            "responses": {
                "200": {"description": "The OpenAPI document.", "content": {"application/json": {"schema": {}}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": info,
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API token."}},
            "schemas": schemas,
        },
    }
