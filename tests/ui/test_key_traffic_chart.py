"""The key's traffic as an admin sees it: real widget API requests, then the chart in Dashboard Settings shows the
current and the old key as separate series, refused requests in red, and the grace notice says how much the old
key is still used."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from nicegui import ui
from nicegui.testing import User
from sqlmodel import Session, select

from api import create_api_app
from models import ApiKey
from models import User as Account
from services.keys import api_keys, key_traffic
from tests.factories import acting
from tests.ui.helpers import ADMIN_EMAIL, button, in_database, set_up_organization
from ui.sections.key_traffic_chart import REFUSED_COLOR

ENDPOINT = '/api/v1/organization'


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    key_traffic.discard_pending()  # counts are process memory: none from an earlier test
    async with httpx.AsyncClient(transport=httpx.ASGITransport(create_api_app()), base_url='http://test') as client:
        yield client


async def requests(api: httpx.AsyncClient, key: str, times: int) -> set[int]:
    return {(await api.get(ENDPOINT, headers={'X-API-Key': key})).status_code for _ in range(times)}


def admin(session: Session) -> Account:
    return session.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one()


def rotate_with_grace(session: Session) -> str:
    return api_keys.rotate_key(session=session, actor=acting(session, admin(session)), grace=timedelta(hours=1))


def revoke_old(session: Session) -> None:
    old = session.exec(select(ApiKey).where(ApiKey.expires_at != None)).one()  # noqa: E711 (SQL)
    api_keys.revoke_old_key(session=session, actor=acting(session, admin(session)), key_id=old.id or 0)


def chart(user: User) -> ui.echart:
    (element,) = user.find(marker='key-traffic-chart').elements
    assert isinstance(element, ui.echart)
    return element


async def test_real_requests_show_up_per_key_with_refused_in_red(user: User, api: httpx.AsyncClient) -> None:
    await set_up_organization(user)
    await user.should_see("The key's traffic")
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')
    old = await in_database(lambda session: api_keys.reveal_key(session=session, actor=acting(session, admin(session))))

    assert await requests(api, old, 3) == {200}
    await asyncio.to_thread(key_traffic.flush)  # some counts stored, the rest still in memory: the chart shows both
    new = await in_database(rotate_with_grace)
    assert await requests(api, old, 2) == {200}  # still good in its grace window
    assert await requests(api, new, 4) == {200}
    assert await requests(api, 'cxt_' + 'x' * 40, 5) == {401}  # unknown: nobody's traffic

    await user.open('/')
    await user.should_see('Old key: 5 requests in the last hour')
    await in_database(revoke_old)
    assert await requests(api, old, 6) == {401}  # revoked: refused, and counted against the old key

    await user.open('/')
    await user.should_see("The key's traffic")
    await user.should_see(
        f'Last 7 days, by hour: current key {api_keys.mask(new[-4:])}: 4 accepted, 0 refused; '
        f'old key {api_keys.mask(old[-4:])}: 5 accepted, 6 refused.'
    )
    options = chart(user).options
    series = {line['name']: line for line in options['series']}
    assert list(series) == [f'Current key …{new[-4:]}', f'Old key …{old[-4:]}', f'Refused, old key …{old[-4:]}']
    assert len(options['xAxis']['data']) == 7 * 24
    assert sum(series[f'Current key …{new[-4:]}']['data']) == 4
    assert sum(series[f'Old key …{old[-4:]}']['data']) == 5
    refused = series[f'Refused, old key …{old[-4:]}']
    assert sum(refused['data']) == 6
    assert refused['color'] == refused['lineStyle']['color'] == REFUSED_COLOR
    assert series[f'Old key …{old[-4:]}']['color'] != REFUSED_COLOR

    (toggle,) = user.find(marker='traffic-range').elements
    assert isinstance(toggle, ui.toggle)
    toggle.set_value('day')  # as a click on `Last 30 days, by day` does
    await user.should_see('Last 30 days, by day: current key')
    options = chart(user).options
    assert len(options['xAxis']['data']) == 30
    assert [sum(line['data']) for line in options['series']] == [4, 5, 6]
