"""Compare the client's models and routes with a server's OpenAPI document.

``differences(openapi)`` lists every way the document and ``collector_client.models`` differ:
a route (method + path) one side lacks, an operation id, a query parameter, a request body or
success answer schema, a schema one side lacks, a property, its requiredness or its JSON type
(``str``, ``int``, ``float``, ``bool``, ``list[...]``, ``dict[str, ...]``, a schema name, ``|None``),
an enum's values, and the ``Client``/``AsyncClient`` methods and their query keywords. An empty
list means the client matches the server.

    from collector_client import Client
    from collector_client.drift import differences
    assert differences(Client(url).openapi()) == []
"""

import inspect
import typing
from typing import Any, Dict, List, Literal, Mapping, Optional, Set, Tuple, get_args, get_origin

from . import models
from .client import AsyncClient, Client

_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_REF = "#/components/schemas/"


def _ref_name(ref: str) -> str:
    return ref[len(_REF):] if ref.startswith(_REF) else ref


def _schema_type(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    """The canonical type string of an OpenAPI schema (3.1 style nullables)."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        if name in models.OPEN_SCHEMAS:
            return "Any" if name == "NotNull" else "str"
        return name
    for key in ("oneOf", "anyOf"):
        if key in schema:
            parts: Set[str] = set()
            for alt in schema[key]:
                parts.update(_schema_type(alt, schemas).split("|"))
            return "|".join(sorted(parts))
    kinds = schema.get("type")
    if kinds is None:
        return "Any"
    if isinstance(kinds, str):
        kinds = [kinds]
    parts = set()
    for kind in kinds:
        if kind == "null":
            parts.add("None")
        elif kind in _SCALARS:
            parts.add(_SCALARS[kind])
        elif kind == "array":
            parts.add(f"list[{_schema_type(schema.get('items', {}), schemas)}]")
        elif kind == "object":
            extra = schema.get("additionalProperties")
            value = _schema_type(extra, schemas) if isinstance(extra, dict) else "Any"
            parts.add(f"dict[str,{value}]")
        else:
            parts.add(kind)
    if len(kinds) >= 5:  # any JSON value (NotNull written inline)
        return "Any"
    return "|".join(sorted(parts))


def _enum_names() -> Dict[Tuple[str, ...], str]:
    return {tuple(sorted(get_args(v))): k for k, v in models.ENUMS.items()}


def _annotation_type(tp: Any) -> str:
    """The canonical type string of a Python annotation, to compare with ``_schema_type``."""
    if tp is Any:
        return "Any"
    if tp is type(None):
        return "None"
    origin = get_origin(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        parts: Set[str] = set()
        for a in get_args(tp):
            parts.update(_annotation_type(a).split("|"))
        return "|".join(sorted(parts))
    if origin is Literal:
        return _enum_names().get(tuple(sorted(get_args(tp))), f"Literal{sorted(get_args(tp))}")
    if origin in (list, List):
        (item,) = get_args(tp)
        return f"list[{_annotation_type(item)}]"
    if origin in (dict, Dict):
        _, value = get_args(tp)
        return f"dict[str,{_annotation_type(value)}]"
    if isinstance(tp, type) and hasattr(tp, "__required_keys__"):
        return tp.__name__
    if tp in (str, int, float, bool):
        return str(tp.__name__)
    return repr(tp)


def _object_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object part of a schema (``allOf``'s first member carries the properties)."""
    if "allOf" in schema:
        first: Mapping[str, Any] = schema["allOf"][0]
        return first
    return schema


def _schema_differences(doc: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    schemas: Mapping[str, Any] = doc.get("components", {}).get("schemas", {})
    ours = set(models.SCHEMAS) | set(models.OPEN_SCHEMAS)
    for name in sorted(set(schemas) - ours):
        out.append(f"schema {name}: on the server, not in the client")
    for name in sorted(ours - set(schemas)):
        out.append(f"schema {name}: in the client, not on the server")
    for name in sorted(set(schemas) & ours):
        schema = schemas[name]
        if name in models.OPEN_SCHEMAS:
            if name == "KnownPlatform" and not set(models.DEFAULT_PLATFORMS) <= set(schema.get("enum", [])):
                out.append(f"schema {name}: enum {schema.get('enum')} lacks {models.DEFAULT_PLATFORMS}")
            continue
        if name in models.ENUMS:
            server = sorted(schema.get("enum", []))
            client = sorted(get_args(models.ENUMS[name]))
            if server != client:
                out.append(f"enum {name}: server {server}, client {client}")
            continue
        td = models.SCHEMAS[name]
        obj = _object_schema(schema)
        props: Mapping[str, Any] = obj.get("properties", {})
        required = set(obj.get("required", []))
        hints = typing.get_type_hints(td)
        for field in sorted(set(props) - set(hints)):
            out.append(f"{name}.{field}: on the server, not in the client")
        for field in sorted(set(hints) - set(props)):
            out.append(f"{name}.{field}: in the client, not on the server")
        for field in sorted(set(props) & set(hints)):
            server_req = field in required
            client_req = field in td.__required_keys__
            if server_req != client_req:
                out.append(f"{name}.{field}: required on the {'server' if server_req else 'client'} only")
            st = _schema_type(props[field], schemas)
            ct = _annotation_type(hints[field])
            if st != ct:
                out.append(f"{name}.{field}: type {st} on the server, {ct} in the client")
    return out


def _success_schema(response: Mapping[str, Any]) -> Optional[str]:
    content = response.get("content") or {}
    if not content:
        return models.NO_BODY
    for media, body in content.items():
        schema = body.get("schema", {})
        if media == "application/jsonl":
            return models.JSONL
        if "$ref" in schema:
            return _ref_name(schema["$ref"])
        return str(schema.get("type"))
    return None


def _route_differences(doc: Mapping[str, Any]) -> List[str]:
    out: List[str] = []
    server: Dict[Tuple[str, str], Mapping[str, Any]] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete", "head", "options"):
                server[(method.upper(), path)] = op
    client = {(r.method, r.path): r for r in models.ROUTES}
    for key in sorted(set(server) - set(client)):
        out.append(f"route {key[0]} {key[1]}: on the server, not in the client")
    for key in sorted(set(client) - set(server)):
        out.append(f"route {key[0]} {key[1]}: in the client, not on the server")
    for key in sorted(set(server) & set(client)):
        op, route = server[key], client[key]
        where = f"route {key[0]} {key[1]}"
        if op.get("operationId") != route.operation_id:
            out.append(f"{where}: operationId {op.get('operationId')} on the server, {route.operation_id} in the client")
        params = op.get("parameters", [])
        query = sorted(p["name"] for p in params if p.get("in") == "query")
        if query != sorted(route.query):
            out.append(f"{where}: query {query} on the server, {sorted(route.query)} in the client")
        path_params = sorted(p["name"] for p in params if p.get("in") == "path")
        declared = sorted(seg[1:-1] for seg in key[1].split("/") if seg.startswith("{"))
        if path_params != declared:
            out.append(f"{where}: path parameters {path_params} on the server, {declared} in the path")
        body = op.get("requestBody")
        body_name: Optional[str] = None
        if body:
            schema = body.get("content", {}).get("application/json", {}).get("schema", {})
            body_name = _ref_name(schema.get("$ref", "")) or str(schema.get("type"))
        if body_name != route.body:
            out.append(f"{where}: request body {body_name} on the server, {route.body} in the client")
        successes = dict(sorted((int(s), _success_schema(r)) for s, r in op.get("responses", {}).items()
                                if int(s) < 400))
        if successes != route.responses:
            out.append(f"{where}: success answers {successes} on the server, {route.responses} in the client")
        for status, resp in op.get("responses", {}).items():
            if int(status) >= 400 and (resp.get("content") or {}):
                name = _success_schema(resp)
                if name != "ErrorBody":
                    out.append(f"{where}: error {status} answers {name}, not ErrorBody")
        for cls in (Client, AsyncClient):
            method = getattr(cls, route.client_method, None)
            if method is None:
                out.append(f"{where}: {cls.__name__}.{route.client_method} is missing")
                continue
            sig = inspect.signature(method).parameters
            kw = {n for n, p in sig.items() if p.kind == p.KEYWORD_ONLY}
            # Every query parameter is a parameter of the method; every keyword is a query parameter.
            if not set(route.query) <= set(sig) or not kw <= set(route.query):
                out.append(f"{where}: {cls.__name__}.{route.client_method} parameters {sorted(sig)}, "
                           f"query {sorted(route.query)}")
    return out


def differences(openapi: Mapping[str, Any]) -> List[str]:
    """Every difference between the server's OpenAPI document and this client; [] when none."""
    return _route_differences(openapi) + _schema_differences(openapi)


__all__ = ["differences"]
