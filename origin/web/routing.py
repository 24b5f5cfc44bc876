"""One Starlette route per path, dispatching on the method, so 405 answers name every method.

Starlette answers a method no route takes with the ``Allow`` header of the *first* route whose
path matched; with one route per (path, method) pair, ``OPTIONS /admin/login`` would claim only
``GET, HEAD`` although the path takes ``POST`` too. `one_route_per_path` merges routes of the same
path into one whose endpoint picks the handler by method. Wiring only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

Endpoint = Callable[[Request], Awaitable[Response]]


def one_route_per_path(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """`routes` with every group of same-path `Route`s merged at the first one's position."""
    handlers: dict[str, dict[str, Endpoint]] = {}
    order: list[BaseRoute | str] = []
    for route in routes:
        if not isinstance(route, Route):
            order.append(route)
            continue
        if route.path not in handlers:
            handlers[route.path] = {}
            order.append(route.path)
        for method in route.methods or ("GET",):
            if method != "HEAD":
                handlers[route.path].setdefault(method, route.endpoint)
    return [item if not isinstance(item, str) else _route(item, handlers[item]) for item in order]


def _route(path: str, by_method: dict[str, Endpoint]) -> Route:
    if len(by_method) == 1:
        ((method, endpoint),) = by_method.items()
        return Route(path, endpoint, methods=[method])
    get = by_method.get("GET")

    async def dispatch(request: Request) -> Response:
        method = request.method
        handler = by_method.get(method) or (get if method == "HEAD" else None)
        if handler is None:  # the Route already answered 405 for methods outside its list
            raise AssertionError(f"{method} {path} reached a route that does not take it")
        return await handler(request)

    dispatch.__name__ = "_or_".join(e.__name__ for e in by_method.values())
    return Route(path, dispatch, methods=list(by_method))
