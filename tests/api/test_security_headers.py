"""The security headers middleware in process (tests/security/test_headers.py checks the real app in Chromium)."""

import base64
import gzip
import hashlib

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.security_headers import install_security_headers

SCRIPT = b"window.page = {'id': 1};"
PAGE = b'<html><head><script>' + SCRIPT + b'</script><script src="/_nicegui/x.js"></script></head></html>'


def make_app(public_url: str = 'http://127.0.0.1:8080') -> FastAPI:
    app = FastAPI()

    @app.get('/page')
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get('/zipped')
    async def zipped() -> Response:
        return Response(gzip.compress(PAGE), media_type='text/html', headers={'Content-Encoding': 'gzip'})

    @app.get('/api/thing')
    async def thing() -> JSONResponse:
        return JSONResponse({'ok': True})

    @app.get('/_nicegui/x.js')
    async def asset() -> Response:
        return Response(b'1', media_type='text/javascript', headers={'Cache-Control': 'public, max-age=31536000'})

    install_security_headers(app, public_url=public_url)
    return app


async def get(app: FastAPI, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url='http://test') as client:
        return await client.get(path)


def expected_hash() -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(SCRIPT).digest()).decode() + "'"


async def test_a_page_allows_exactly_its_own_inline_scripts() -> None:
    for path in ('/page', '/zipped'):
        response = await get(make_app(), path)
        policy = response.headers['content-security-policy']
        assert expected_hash() in policy, path
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy and "base-uri 'self'" in policy
        assert "'unsafe-inline'" not in policy.split('script-src')[1].split(';')[0]
        assert response.headers['cache-control'] == 'no-store'
        assert response.headers['x-content-type-options'] == 'nosniff'
        assert response.headers['referrer-policy'] == 'same-origin'
        assert 'strict-transport-security' not in response.headers
    assert (await get(make_app(), '/page')).content == PAGE, 'the body passes through unchanged'


async def test_api_answers_and_assets_get_only_what_they_need() -> None:
    api = await get(make_app(), '/api/thing')
    assert api.headers['x-content-type-options'] == 'nosniff'
    assert 'content-security-policy' not in api.headers and 'cache-control' not in api.headers
    asset = await get(make_app(), '/_nicegui/x.js')
    assert asset.headers['cache-control'] == 'public, max-age=31536000'
    assert 'content-security-policy' not in asset.headers


async def test_https_is_pinned_only_for_an_https_public_url() -> None:
    response = await get(make_app('https://dashboard.example.com'), '/page')
    assert response.headers['strict-transport-security'].startswith('max-age=')
