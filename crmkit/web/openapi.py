"""OpenAPI 3 from marshmallow schemas: operations are data, the document and a docs page are generated."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from crmkit.web.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {}}}}}},
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_TEXT = {400: "Malformed request", 401: "No or invalid token", 403: "The caller's role may not do this",
              404: "Not found, or not the caller's to see", 405: "Method not allowed",
              409: "State conflict", 413: "Body too large", 415: "Unsupported media type",
              422: "Validation failed (`fields` names each field)", 429: "Too many requests", 503: "Unavailable"}
PAGE_PARAMS = ("limit", "offset")
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "The same key with the same body returns the first response; "
                                  "with a different body, 422.",
                   "schema": {"type": "string", "minLength": 1, "maxLength": 255}}


@dataclass
class Reply:
    """One more documented response of an operation (besides its main one and the errors)."""
    description: str
    schema: object = None
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)  # name -> JSON schema


@dataclass
class Op:
    method: str
    path: str  # Flask style: /contracts/<id>, after the prefix unless prefixed=False
    summary: str
    tag: str
    body: object = None  # marshmallow Schema class or instance
    response: object = None  # marshmallow Schema (class or instance) or a JSON schema dict
    status: int = 200
    paged: bool = False  # a list: ?limit=&offset= and {"items": [response...], "total": N}
    query: object = None  # marshmallow Schema of the query string (its limit/offset are documented once)
    body_required: bool = True
    content_type: str = "application/json"
    errors: tuple = (400, 401, 403, 404, 409, 422)
    extra_statuses: dict = field(default_factory=dict)  # status -> description or Reply
    public: bool = False
    idempotent: bool = False  # accepts Idempotency-Key
    path_params: dict = field(default_factory=dict)  # name -> JSON schema (default: a non-empty string)
    description: str = ""
    prefixed: bool = True
    example: object = None  # a request body as a client would send it


def _openapi_path(path: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", path)
    return re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", path), names


def _schema_classes(schema, seen: set) -> None:
    """Every marshmallow Schema class reachable from `schema` through nested fields."""
    if schema is None or isinstance(schema, (dict, str)):
        return
    cls = schema if isinstance(schema, type) else type(schema)
    if cls in seen:
        return
    seen.add(cls)
    for field_obj in cls._declared_fields.values():
        for inner in (field_obj, getattr(field_obj, "inner", None), getattr(field_obj, "value_field", None)):
            if isinstance(inner, fields.Nested):
                nested = inner.nested
                _schema_classes(nested() if callable(nested) and not isinstance(nested, type) else nested, seen)


def _name_resolver(operations: list, home: str):
    """Component names: the class name; where two classes share one (quotes' and contracts' LineIn), the class
    from outside `home` (the module prefix of the documented service) gets its own service's name in front."""
    classes: set = set()
    for op in operations:
        for schema in (op.body, op.response, op.query, *[r.schema for r in op.extra_statuses.values()
                                                         if isinstance(r, Reply)]):
            _schema_classes(schema, classes)
    by_name: dict[str, set] = {}
    for cls in classes:
        by_name.setdefault(cls.__name__, set()).add(cls)

    def resolve(schema) -> str:
        cls = schema if isinstance(schema, type) else type(schema)
        name = cls.__name__
        if len(by_name.get(name, ())) > 1 and not cls.__module__.startswith(home):
            module = cls.__module__.split(".")
            name = (module[1] if module[0] == "services" else module[-1]).capitalize() + name
        if not isinstance(schema, type):
            name += "Partial" if schema.partial else ""
            name += "Summary" if schema.exclude or schema.only else ""
        return name

    return resolve


def _decimal_property(self, field_obj, **kwargs) -> dict:
    """Money, quantities and rates travel as decimal strings (SPEC §3), never as JSON numbers."""
    if not isinstance(field_obj, fields.Decimal) or not field_obj.as_string:
        return {}
    places = getattr(field_obj, "places_allowed", None) or 6
    minimum = getattr(field_obj, "minimum", None)
    maximum = getattr(field_obj, "maximum", None)
    sign = "-?" if minimum is None or minimum < 0 else ""
    if maximum is not None and maximum == 1 and minimum is not None and minimum >= 0:
        pattern = rf"^(0(\.[0-9]{{1,{places}}})?|1(\.0{{1,{places}}})?)$"  # a rate: 0 to 1
    else:
        pattern = rf"^{sign}[0-9]{{1,16}}(\.[0-9]{{1,{places}}})?$"
    return {"type": "string", "pattern": pattern}


def _json_schema(converter, schema):
    """A marshmallow schema (or an already-written JSON schema dict) as a JSON schema or a $ref."""
    if schema is None or isinstance(schema, dict):
        return schema
    return converter.resolve_nested_schema(schema)


def _content(converter, schema, content_type: str = "application/json") -> dict:
    if content_type != "application/json":
        return {content_type: {"schema": schema if isinstance(schema, dict) else {"type": "string",
                                                                                   "format": "binary"}}}
    return {content_type: {"schema": _json_schema(converter, schema)}}


def build_spec(title: str, version: str, prefix: str, operations: list[Op], description: str = "",
               home: str = "") -> dict:
    plugin = MarshmallowPlugin(schema_name_resolver=_name_resolver(operations, home))
    spec = APISpec(title=title, version=version, openapi_version="3.0.3", plugins=[plugin],
                   info={"description": description} if description else {})
    plugin.converter.add_attribute_function(_decimal_property)
    converter = plugin.converter
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", ERROR_SCHEMA)
    paths: dict[str, dict] = {}
    for op in operations:
        path, names = _openapi_path((prefix if op.prefixed else "") + op.path)
        parameters = [{"name": n, "in": "path", "required": True,
                       "schema": op.path_params.get(n) or {"type": "string", "minLength": 1, "maxLength": 64}}
                      for n in names]
        if op.query is not None:
            query = op.query() if isinstance(op.query, type) else op.query
            parameters += [p for p in converter.schema2parameters(query, location="query")
                           if p["name"] not in PAGE_PARAMS]
        if op.paged:
            parameters += [
                {"name": "limit", "in": "query", "required": False,
                 "description": f"Default {DEFAULT_LIMIT}, at most {MAX_LIMIT}.",
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
                {"name": "offset", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}}]
        if op.idempotent:
            parameters.append(dict(IDEMPOTENCY_KEY))
        operation = {"summary": op.summary, "tags": [op.tag], "operationId": _operation_id(op.method, path),
                     "parameters": parameters, "responses": {}}
        if op.description:
            operation["description"] = op.description
        if op.body is not None:
            media = {"schema": _json_schema(converter, op.body)}
            if op.example is not None:
                media["example"] = op.example
            operation["requestBody"] = {"required": op.body_required, "content": {"application/json": media}}
        if op.response is None:
            ok = {"description": "OK"}
        elif op.paged:
            ok = {"description": "OK", "content": {"application/json": {"schema": {
                "type": "object", "required": ["items", "total"],
                "properties": {"items": {"type": "array", "items": _json_schema(converter, op.response)},
                               "total": {"type": "integer", "minimum": 0}}}}}}
        else:
            ok = {"description": "OK", "content": _content(converter, op.response, op.content_type)}
        operation["responses"][str(op.status)] = ok
        for status, extra in op.extra_statuses.items():
            reply = extra if isinstance(extra, Reply) else Reply(str(extra))
            response = {"description": reply.description}
            if reply.schema is not None:
                response["content"] = _content(converter, reply.schema, reply.content_type)
            if reply.headers:
                response["headers"] = {name: {"schema": schema} for name, schema in reply.headers.items()}
            operation["responses"][str(status)] = response
        errors = set(op.errors) | ({413} if op.body is not None else set()) | ({401} if not op.public else set())
        for status in sorted(errors):
            operation["responses"][str(status)] = {
                "description": ERROR_TEXT.get(status, "Error"), "content": {"application/json": {"schema": ERROR_REF}}}
        if not op.public:
            operation["security"] = [{"bearer": []}]
        else:
            operation["security"] = []
        paths.setdefault(path, {})[op.method.lower()] = operation
    for path, operations_ in paths.items():
        spec.path(path=path, operations=operations_)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    return document


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[{}]", "", path).replace("/api/v1/", "/").strip("/")
    return method.lower() + "_" + re.sub(r"[^A-Za-z0-9]+", "_", words).strip("_")


def docs_page(document: dict) -> str:
    """A self-contained page listing every operation (no script from elsewhere)."""
    rows = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op.get('summary', ''))}</td>"
                        f"<td>{html.escape(', '.join(sorted(op.get('responses', {}))))}</td></tr>")
    return ("<!doctype html><meta charset=utf-8><title>" + html.escape(document["info"]["title"]) +
            "</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 12px;text-align:left}"
            "</style>"
            f"<h1>{html.escape(document['info']['title'])} {html.escape(document['info']['version'])}</h1>"
            f"<p>{html.escape(document['info'].get('description', ''))}</p><p>Machine-readable: "
            "<a href=/api/openapi.json>/api/openapi.json</a>. Send <code>Authorization: Bearer &lt;token&gt;"
            "</code> from <code>POST /api/v1/auth/token</code>.</p><table><tr><th>method</th><th>path</th>"
            "<th>what</th><th>statuses</th></tr>" + "".join(rows) + "</table>")

