"""`/api/...` requests no API route answers: 405 with `Allow` on a path that exists, a JSON 404 on one that does not.

`create_api_app` adds this route after every API route and before NiceGUI's mount at `/` (main.py mounts it after
`create_api_app()`), so a made-up API path or method is answered in JSON instead of reaching the pages. Routes match
in order, so requests an API route answers (the widget API's hot path) never get here.
"""

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import URLPath
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

PREFIX = '/api'


class UnmatchedApiRequest(BaseRoute):
    """Every HTTP request under `/api`, whatever its method or path (a Route's pattern would skip a newline); a 405
    names the methods that `routers` (the API's own) answer on that path."""

    def __init__(self, routers: Iterable[APIRouter]) -> None:
        self.routes = [route for router in routers for route in router.routes if isinstance(route, Route)]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope['type'] == 'http' and _is_api_path(_route_path(scope)):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed = self._allowed_methods(scope)
        if allowed:
            headers = {'Allow': ', '.join(allowed)}
            response = JSONResponse({'error': 'method_not_allowed'}, status_code=405, headers=headers)
        else:
            response = JSONResponse({'error': 'not_found'}, status_code=404)
        await response(scope, receive, send)

    def _allowed_methods(self, scope: Scope) -> list[str]:
        """The methods of the routes on this request's path; none when no route has that path."""
        methods: set[str] = set()
        for route in self.routes:
            if route.methods and route.matches(scope)[0] is Match.PARTIAL:
                methods |= route.methods
        return sorted(methods)


def _is_api_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + '/')


def _route_path(scope: Scope) -> str:
    """The path as routes see it: without the root path the server may run under."""
    path, root = scope['path'], scope.get('root_path', '')
    return path[len(root) :] if root and path.startswith(root + '/') else path
