from collections.abc import AsyncIterator

import httpx
import pytest

from api import create_api_app


@pytest.fixture
async def client(database: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(create_api_app())
    async with httpx.AsyncClient(transport=transport, base_url='http://test') as client:
        yield client
