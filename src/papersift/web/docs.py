"""`/docs`, the JSON API's documentation as a page of the site, and `/favicon.ico`.

FastAPI's Swagger UI and ReDoc pages load their scripts from a CDN, and no installed package ships
their assets; the site serves no third-party files and must work offline. So this page is rendered
here, with the site's own template and stylesheet, from the same OpenAPI document as
`/api/openapi.json`: every operation with its parameters, request body and responses, and every
schema with its fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from papersift.web import auth
from papersift.web.render import STATIC, Renderer
from papersift.web.site import Site

router = APIRouter(include_in_schema=False)
METHODS = ("get", "post", "put", "patch", "delete")
_REF = "#/components/schemas/"


@dataclass
class Field:
    name: str
    where: str  # query, path, header, cookie, or "body" for a schema's property
    type: str
    required: bool
    notes: str
    ref: str = ""  # the schema a field's type names, for a link


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    description: str
    anchor: str
    parameters: list[Field] = field(default_factory=list)
    body: str = ""  # the request body's schema name
    body_required: bool = False
    responses: list[tuple[str, str, str]] = field(default_factory=list)  # status, description, schema


@dataclass
class Schema:
    name: str
    fields: list[Field]


def type_of(schema: dict[str, Any]) -> tuple[str, str]:
    """A short readable type (`string`, `list of PaperOut`, `integer or null`) and the schema it names."""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix(_REF)
        return name, name
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            parts = [type_of(s) for s in schema[key]]
            return " or ".join(p[0] for p in parts), next((p[1] for p in parts if p[1]), "")
    kind = schema.get("type", "any")
    if kind == "array":
        item, ref = type_of(schema.get("items", {}))
        return f"list of {item}", ref
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"]), ""
    return (f"{kind} ({schema['format']})" if "format" in schema else str(kind)), ""


def notes_of(schema: dict[str, Any], description: str = "") -> str:
    """Constraints and default, in words."""
    notes = [description] if description else []
    for key, label in (
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minimum", "≥ {}"),
        ("maximum", "≤ {}"),
        ("exclusiveMinimum", "> {}"),
        ("exclusiveMaximum", "< {}"),
        ("pattern", "matches {}"),
    ):
        if key in schema:
            notes.append(label.format(schema[key]))
    if "default" in schema and schema["default"] not in ("", None, [], {}):
        notes.append(f"default {schema['default']!r}")
    return "; ".join(notes)


def _schema_of(content: dict[str, Any]) -> str:
    for media in content.values():
        name, _ = type_of(media.get("schema", {}))
        return name
    return ""


def describe(document: dict[str, Any]) -> tuple[list[Operation], list[Schema]]:
    """The operations and schemas of an OpenAPI document, in its order."""
    operations = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            spec = item.get(method)
            if spec is None:
                continue
            op = Operation(
                method=method.upper(),
                path=path,
                summary=spec.get("summary", ""),
                description=spec.get("description", ""),
                anchor=spec.get("operationId", f"{method}-{path}"),
            )
            for param in spec.get("parameters", []):
                schema = param.get("schema", {})
                kind, ref = type_of(schema)
                notes = notes_of(schema, param.get("description", ""))
                op.parameters.append(Field(param["name"], param["in"], kind, bool(param.get("required")), notes, ref))
            body = spec.get("requestBody")
            if body:
                op.body = _schema_of(body.get("content", {}))
                op.body_required = bool(body.get("required"))
            for status, answer in spec.get("responses", {}).items():
                op.responses.append((status, answer.get("description", ""), _schema_of(answer.get("content", {}))))
            op.responses.sort()
            operations.append(op)
    schemas = []
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        required = set(schema.get("required", []))
        fields = []
        for prop, sub in schema.get("properties", {}).items():
            kind, ref = type_of(sub)
            fields.append(Field(prop, "body", kind, prop in required, notes_of(sub, sub.get("description", "")), ref))
        schemas.append(Schema(name, fields))
    return operations, schemas


@router.get("/docs")
def api_docs(request: Request) -> Response:
    site: Site = request.app.state.site
    renderer: Renderer = request.app.state.renderer
    document = request.app.openapi()
    operations, schemas = describe(document)
    context = {
        "info": document.get("info", {}),
        "operations": operations,
        "schemas": schemas,
        "user": auth.current_user(request, site),
        "csrf": auth.csrf_token(request),
    }
    return renderer.render(request, "docs.html", context)


@router.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})
