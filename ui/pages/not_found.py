"""Our own `404` page, in the product's frame: for any address no page or route answers, and for pages that find
nothing to show (an unknown help topic). Routes that are not pages (NiceGUI's files, `/api/...`) keep their plain or
JSON answers."""

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from nicegui import Client, app, ui
from nicegui.page import page
from starlette.exceptions import HTTPException as StarletteHTTPException

from ui import theme

TITLE = 'Page not found'


def install() -> None:
    """Answer 404s with `not_found_page` (replacing NiceGUI's `HTTPException: 404` page); call before serving."""
    app.exception_handlers[404] = _handle_404
    app.exception_handlers[StarletteHTTPException] = _handle_http_exception


async def _handle_http_exception(request: Request, exception: Exception) -> Response:
    if isinstance(exception, StarletteHTTPException) and exception.status_code == 404:
        return await _handle_404(request, exception)
    assert isinstance(exception, StarletteHTTPException)
    return await http_exception_handler(request, exception)


async def _handle_404(request: Request, exception: Exception) -> Response:
    endpoint = request.scope.get('endpoint')
    is_page = request.scope.get('nicegui_page_path') is not None
    if endpoint is not None and endpoint is not app and not is_page and isinstance(exception, StarletteHTTPException):
        return await http_exception_handler(request, exception)  # a file or API route: its own answer, as before
    with Client(page(''), request=request) as client:
        not_found_content()
    return client.build_response(request, 404)


def not_found_content() -> None:
    with theme.frame(TITLE):
        ui.label('There is nothing at this address. It may have moved, or the link may be mistyped.').classes(
            'text-body1'
        )
        with ui.row().classes('gap-4 text-body1'):
            ui.link('Go to the dashboard', '/')
            ui.link('Troubleshooting', '/help/troubleshooting')
