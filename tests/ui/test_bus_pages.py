"""Open pages hear of every change from the bus, once: a change made in this process from this process's bus, one
made in another process over PostgreSQL NOTIFY; no page handler refreshes other pages by hand."""

import asyncio
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from nicegui import core
from nicegui.client import Client
from nicegui.testing import User
from sqlmodel import Session, select

from models import Organization, Role
from models import User as Account
from services import events
from services.db import write_scope
from services.keys import api_keys
from services.team import members, organizations
from tests.browser.helpers import REPO_ROOT
from tests.factories import acting, make_organization, make_user
from tests.ui import helpers
from tests.ui.helpers import ADMIN_EMAIL
from ui import open_pages

SETTLE = 1.5  # seconds: a second delivery of the same change would have arrived by then


class CountingView:
    """Stands in for an open card of an organization: counts how often the open pages ask it to load again."""

    def __init__(self, organization_id: int, client: Any) -> None:
        self.organization_id = organization_id
        self.client = client
        self.reloads = 0

    async def reload(self) -> None:
        self.reloads += 1


async def eventually(check: Callable[[], bool]) -> None:
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.05)
    assert check()


async def test_each_change_in_this_process_reaches_the_open_views_that_show_it_once(user: User) -> None:
    await helpers.set_up_organization(user)
    admin = await helpers.from_database(lambda db: db.exec(select(Account).where(Account.email == ADMIN_EMAIL)).one())
    assert admin.organization_id is not None
    team, keys, subdomains = (CountingView(admin.organization_id, user.client) for _ in range(3))
    open_pages.show_team(team)
    open_pages.show_keys(keys)
    open_pages.show_subdomains(subdomains)

    def new_member(db: Session) -> int:
        organization = db.get_one(Organization, admin.organization_id)
        member = make_user(db, organization=organization, role=Role.MEMBER, email='max@example.com')
        assert member.id is not None
        return member.id

    member_id = await helpers.in_database(new_member)
    await eventually(lambda: team.reloads == 0)  # a row written without an event: no page hears of it

    def make_admin(db: Session) -> None:
        members.change_role(session=db, actor=acting(db, admin), member_id=member_id, role=Role.ADMIN)

    await helpers.in_database(make_admin)
    await eventually(lambda: team.reloads == 1)
    await helpers.in_database(lambda db: api_keys.generate_key(session=db, actor=admin))
    await eventually(lambda: keys.reloads == 1)
    await helpers.in_database(
        lambda db: organizations.update_subdomains(session=db, actor=admin, subdomain='acme', sandbox_subdomain='')
    )
    await eventually(lambda: subdomains.reloads == 1)

    def rolled_back(db: Session) -> None:
        api_keys.rotate_key(session=db, actor=acting(db, admin), grace=timedelta(0))
        raise RuntimeError('rolled back')

    with pytest.raises(RuntimeError):
        await helpers.in_database(rolled_back)
    await asyncio.sleep(SETTLE)
    assert (team.reloads, keys.reloads, subdomains.reloads) == (1, 1, 1)


class Browser:
    """Stands in for a NiceGUI client that stays open (what the open pages need of one), served by this process."""

    is_deleted = False
    request = None

    def __init__(self) -> None:
        self.id = f'browser-{id(self)}'

    def __enter__(self) -> 'Browser':
        return self

    def __exit__(self, *_: object) -> None:
        return None


OTHER_PROCESS = f"""
import asyncio
import sys

from nicegui import core

from models import Role, User
from services import config, db, events
from services.db import write_scope
from services.team import members
from nicegui.client import Client
from tests.factories import acting
from tests.ui.test_bus_pages import Browser, CountingView
from ui import open_pages


def change_role(admin_id: int, member_id: int, role: str) -> None:
    with write_scope() as session:
        admin = session.get_one(User, admin_id)
        members.change_role(
            session=session, actor=acting(session, admin), member_id=member_id, role=Role(role)
        )


async def main() -> None:
    core.loop = asyncio.get_running_loop()
    settings = config.load_settings()
    config.configure(settings)
    db.init_database(settings.resolved_database_url)
    organization_id, admin_id, member_id = (int(argument) for argument in sys.argv[1:4])
    browser = Browser()
    Client.instances[browser.id] = browser  # served by this process
    view = CountingView(organization_id, browser)
    open_pages.show_team(view)
    listening = asyncio.Event()

    async def on_listening() -> None:
        listening.set()

    url = settings.resolved_database_url
    listener = asyncio.create_task(events.listen(url, open_pages.apply_event, on_listening=on_listening))
    await listening.wait()
    print('listening', flush=True)
    while command := (await asyncio.to_thread(sys.stdin.readline)).split():
        if command[0] == 'change':
            await asyncio.to_thread(change_role, admin_id, member_id, command[1])
        await asyncio.sleep({SETTLE})
        print(view.reloads, flush=True)
    listener.cancel()


asyncio.run(main())
"""


async def test_on_postgresql_the_other_process_s_page_and_the_sender_s_each_update_once(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, 'loop', asyncio.get_running_loop())

    def team() -> tuple[int, int, int]:
        with write_scope() as session:
            organization = make_organization(session, name='Acme')
            admin = make_user(session, organization=organization)
            member = make_user(session, organization=organization, role=Role.MEMBER)
            assert organization.id is not None and admin.id is not None and member.id is not None
            return organization.id, admin.id, member.id

    organization_id, admin_id, member_id = await asyncio.to_thread(team)
    browser = Browser()
    monkeypatch.setitem(Client.instances, browser.id, browser)  # served by this process
    view = CountingView(organization_id, browser)
    open_pages.show_team(view)
    listening = asyncio.Event()

    async def on_listening() -> None:
        listening.set()

    listener = asyncio.create_task(events.listen(pg_database, open_pages.apply_event, on_listening=on_listening))
    other = subprocess.Popen(
        [sys.executable, '-c', OTHER_PROCESS, str(organization_id), str(admin_id), str(member_id)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert other.stdin is not None and other.stdout is not None and other.stderr is not None

    async def ask(command: str) -> int:
        assert other.stdin is not None and other.stdout is not None and other.stderr is not None
        other.stdin.write(command + '\n')
        other.stdin.flush()
        answer = await asyncio.wait_for(asyncio.to_thread(other.stdout.readline), 30)
        assert answer.strip().isdigit(), other.stderr.read() if other.poll() is not None else answer
        return int(answer)

    try:
        await asyncio.wait_for(listening.wait(), 10)
        ready = await asyncio.wait_for(asyncio.to_thread(other.stdout.readline), 60)
        assert ready.strip() == 'listening', other.stderr.read() if other.poll() is not None else ready

        def make_admin() -> None:
            with write_scope() as session:
                admin = session.get_one(Account, admin_id)
                members.change_role(session=session, actor=acting(session, admin), member_id=member_id, role=Role.ADMIN)

        await asyncio.to_thread(make_admin)  # here: this process's bus, and NOTIFY to the other
        await asyncio.sleep(SETTLE)
        assert view.reloads == 1, 'the sender applies its own change once (its own NOTIFY is skipped)'
        assert await ask('count') == 1, "the other process's page updated once"

        assert await ask(f'change {Role.MEMBER}') == 2, 'the other process, as the sender now: once more'
        await eventually(lambda: view.reloads == 2)
        await asyncio.sleep(SETTLE)
        assert view.reloads == 2
    finally:
        listener.cancel()
        if other.poll() is None:
            other.stdin.close()
            try:
                other.wait(timeout=10)
            except subprocess.TimeoutExpired:
                other.kill()
                other.wait(timeout=10)
