"""/openapi.json describes exactly the routes the app serves, as a valid OpenAPI 3.1 document."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _served(app: Starlette) -> dict[str, set[str]]:
    """Path -> methods of every route of the app (static mounts excluded; HEAD implied by GET)."""
    served: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        methods = {m.lower() for m in route.methods or ()} - {"head"}
        served.setdefault(route.path, set()).update(methods)
    return served


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc: dict[str, Any] = response.json()
    return doc


async def test_documented_paths_and_methods_equal_the_served_routes(
    origin_app: Starlette, origin_client: httpx.AsyncClient
) -> None:
    doc = await _document(origin_client)

    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert documented == _served(origin_app)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert part in node, f"unresolvable $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_document_has_a_valid_openapi_3_1_shape(origin_client: httpx.AsyncClient) -> None:
    doc = await _document(origin_client)

    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    assert set(doc) <= {"openapi", "info", "paths", "components", "servers", "tags"}
    for path, operations in doc["paths"].items():
        assert path.startswith("/")
        template_params = set(re.findall(r"\{([^}]+)\}", path))
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert method in HTTP_METHODS, where
            assert operation.get("summary"), where
            responses = operation["responses"]
            assert responses, where
            for status, response in responses.items():
                assert re.fullmatch(r"[1-5]\d\d|[1-5]XX|default", status), (where, status)
                assert response.get("description"), (where, status)
            parameters = operation.get("parameters", [])
            seen: set[tuple[str, str]] = set()
            for parameter in parameters:
                assert parameter["in"] in {"path", "query", "header", "cookie"}, where
                assert parameter["name"], where
                assert (parameter["name"], parameter["in"]) not in seen, (where, parameter)
                seen.add((parameter["name"], parameter["in"]))
                assert "schema" in parameter or "content" in parameter, (where, parameter)
                if parameter["in"] == "path":
                    assert parameter.get("required") is True, (where, parameter)
            path_params = {name for name, location in seen if location == "path"}
            assert path_params == template_params, where
    for ref in _refs(doc):
        _resolve(doc, ref)
