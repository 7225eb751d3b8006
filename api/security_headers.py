"""Security headers on every response of the parent app, as a pure ASGI middleware (the widget API stays fast).

- Pages (everything but `/api/...` and NiceGUI's assets under `/_nicegui/`): a Content-Security-Policy, no caching,
  same-origin referrers (invitation and reset links carry tokens), nosniff, and HSTS behind an https public URL.
- NiceGUI's assets: nosniff, referrer policy and HSTS; their own long-lived Cache-Control is kept.
- The widget API's JSON: nosniff only.

The policy is the strictest NiceGUI 3.18 runs under, measured in Chromium (tests/security/test_headers.py): Vue
compiles NiceGUI's component templates with `new Function` and `run_javascript` uses `eval`, so scripts need
`'unsafe-eval'`; Quasar's style attributes and the Tailwind runtime's style elements need the styles'
`'unsafe-inline'`. Inline scripts are not allowed wholesale: each page's own inline scripts (the import map and
NiceGUI's page script, which holds the page's elements) are allowed by their SHA-256, computed here from the page as
sent. Markup that reaches a page later (an inline handler, an injected script, a `javascript:` URL) is refused.
"""

import base64
import gzip
import hashlib
import re
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

NOSNIFF = (b'x-content-type-options', b'nosniff')
REFERRER_POLICY = (b'referrer-policy', b'same-origin')
NO_STORE = (b'cache-control', b'no-store')
HSTS = (b'strict-transport-security', b'max-age=31536000')
POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-eval'{script_hashes}; "
    "style-src 'self' 'unsafe-inline'; "
    # data: images for generated pictures (an authenticator's QR code); an image runs no script.
    "img-src 'self' data:; "
    "object-src 'none'; "
    "base-uri 'self'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)
API_PREFIX = '/api/'
ASSETS_PREFIX = '/_nicegui/'
# An inline script is a <script> element without `src`; its text runs up to the first `</script`.
INLINE_SCRIPT = re.compile(rb'<script(?![^>]*\ssrc=)(?:\s[^>]*)?>(.*?)</script', re.DOTALL | re.IGNORECASE)


def install_security_headers(app: Starlette, *, public_url: str) -> None:
    """Add the headers to every response of `app` (the parent app NiceGUI is mounted on)."""
    app.add_middleware(SecurityHeaders, https=public_url.startswith('https://'))


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.everywhere = [NOSNIFF, REFERRER_POLICY, HSTS] if https else [NOSNIFF, REFERRER_POLICY]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        path: str = scope['path']
        if path.startswith(API_PREFIX):
            await self.app(scope, receive, _adding(send, [NOSNIFF]))
        elif path.startswith(ASSETS_PREFIX):
            await self.app(scope, receive, _adding(send, self.everywhere))
        else:
            await self.app(scope, receive, _PageSend(send, self.everywhere))


def _adding(send: Send, extra: Headers) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message['type'] == 'http.response.start':
            message['headers'] = [*message.get('headers', ()), *extra]
        await send(message)

    return send_with_headers


class _PageSend:
    """Sends a page's response with the policy; an HTML body is held until complete, to hash its inline scripts."""

    def __init__(self, send: Send, extra: Headers) -> None:
        self.send = send
        self.extra = extra
        self.start: Message | None = None
        self.body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message['type'] == 'http.response.start':
            headers = list(message.get('headers', ()))
            if _header(headers, b'content-type').startswith(b'text/html'):
                self.start = {**message, 'headers': headers}
                return
            await self.send({**message, 'headers': _page_headers(headers, self.extra, policy=_policy(()))})
        elif message['type'] == 'http.response.body' and self.start is not None:
            self.body.append(message.get('body', b''))
            if message.get('more_body', False):
                return
            body = b''.join(self.body)
            headers = self.start['headers']
            scripts = INLINE_SCRIPT.findall(_decoded(body, _header(headers, b'content-encoding')))
            await self.send({**self.start, 'headers': _page_headers(headers, self.extra, policy=_policy(scripts))})
            await self.send({'type': 'http.response.body', 'body': body})
        else:
            await self.send(message)


def _page_headers(headers: Headers, extra: Headers, *, policy: bytes) -> Headers:
    kept = [(name, value) for name, value in headers if name.lower() != b'cache-control']
    return [*kept, *extra, NO_STORE, (b'content-security-policy', policy)]


def _policy(inline_scripts: Iterable[bytes]) -> bytes:
    hashes = dict.fromkeys(f" 'sha256-{_sha256(script)}'" for script in inline_scripts)  # once each, in page order
    return POLICY.format(script_hashes=''.join(hashes)).encode()


def _sha256(script: bytes) -> str:
    # Browsers hash the text as parsed, and HTML parsing turns CR LF and lone CR into LF.
    normalized = script.replace(b'\r\n', b'\n').replace(b'\r', b'\n')
    return base64.b64encode(hashlib.sha256(normalized).digest()).decode()


def _decoded(body: bytes, content_encoding: bytes) -> bytes:
    """The page's HTML; NiceGUI's app, mounted inside this one, gzips it for browsers that accept that."""
    return gzip.decompress(body) if content_encoding.strip().lower() == b'gzip' else body


def _header(headers: Headers, name: bytes) -> bytes:
    return next((value for key, value in headers if key.lower() == name), b'')
