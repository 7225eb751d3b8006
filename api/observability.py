"""Every HTTP response gets an `X-Request-ID`; lines logged meanwhile carry it; with metrics on, it is counted.

A pure ASGI middleware on the parent app (the widget API stays fast: measured by bench/api_throughput.py, metrics on
against off). Requests are counted by route template, the matched route's `path_format` (`/invite/{token}`), which
the router leaves in the scope once it has matched; a request no route matched is counted as `unmatched`, and a
method outside the known few as `other`, so no client can grow the label set.
"""

import itertools
import logging
import os
import re
import time

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import logs, metrics

log = logging.getLogger('cxt.http')

HEADER = b'x-request-id'
# An id a proxy already gave the request is kept (it joins its logs with ours) when it is short and plain.
_GIVEN_ID = re.compile(rb'[A-Za-z0-9._:-]{1,64}')
# Our own ids: random per process (unique across processes and restarts), then counted (a random read per request
# was a measurable part of the widget API's time).
_PROCESS_PREFIX = os.urandom(6).hex()
_numbers = itertools.count(1)


def install_observability(app: Starlette, *, metrics_on: bool) -> None:
    """Add the middleware to `app` (the parent app NiceGUI is mounted on), outermost, so its duration is the whole
    response's."""
    app.add_middleware(Observability, metrics_on=metrics_on)


class Observability:
    def __init__(self, app: ASGIApp, *, metrics_on: bool) -> None:
        self.app = app
        self.metrics_on = metrics_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _given_id(scope) or f'{_PROCESS_PREFIX}-{next(_numbers):x}'
        header = (HEADER, request_id.encode())
        status = 500  # what the client gets if the app fails before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message['type'] == 'http.response.start':
                status = message['status']
                message['headers'] = [*message.get('headers', ()), header]
            await send(message)

        method = scope['method']
        context = logs.RequestContext(request_id, method, scope)
        token = logs.current_request.set(context)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.current_request.reset(token)
            duration = time.perf_counter() - started
            if self.metrics_on:
                self._count(scope, method, status, duration)
            if status >= 500 or log.isEnabledFor(logging.DEBUG):
                log.log(
                    logging.WARNING if status >= 500 else logging.DEBUG,
                    '%s %s %d',
                    method,
                    context.route or metrics.UNMATCHED_ROUTE,
                    status,
                    extra={
                        'request_id': request_id,
                        'method': method,
                        'route': context.route or metrics.UNMATCHED_ROUTE,
                        'status': status,
                        'duration_ms': round(duration * 1000, 2),
                    },
                )

    def _count(self, scope: Scope, method: str, status: int, duration: float) -> None:
        route = scope.get('route')
        template = getattr(route, 'path_format', None) if route is not None else None
        if template is None:
            template = _mount_prefix(scope) or metrics.UNMATCHED_ROUTE
        label_method = method if method in metrics.HTTP_METHODS else 'other'
        metrics.record_request(template, label_method, status if 100 <= status <= 599 else 0, duration)


def _given_id(scope: Scope) -> str | None:
    for name, value in scope['headers']:
        if name == HEADER:
            return value.decode() if _GIVEN_ID.fullmatch(value) else None
    return None


def _mount_prefix(scope: Scope) -> str | None:
    """A request answered by a mounted app without routes of its own (the page socket's polling): its mount path, a
    fixed string from the code."""
    root_path = scope.get('root_path') or ''
    return root_path or None
