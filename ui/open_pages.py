"""The open pages of this process: whose they are, and which show the team, so a change reaches them at once."""

from collections.abc import Awaitable
from typing import Protocol
from weakref import WeakSet

from nicegui import background_tasks, context, storage
from nicegui.client import Client

from models import User


class TeamView(Protocol):
    """An open view of an organization's team that can load itself again."""

    organization_id: int
    client: Client

    def reload(self) -> Awaitable[None]: ...


_clients_by_user: dict[int, set[str]] = {}
_team_views: 'WeakSet[TeamView]' = WeakSet()  # type: ignore[type-var]  (a Protocol is fine at runtime)


def track_page(user: User) -> None:
    """Remember that this page belongs to `user`, so ending their sessions can close it at once."""
    assert user.id is not None
    user_id, client = user.id, context.client
    _clients_by_user.setdefault(user_id, set()).add(client.id)
    client.on_delete(lambda: _clients_by_user.get(user_id, set()).discard(client.id))


def end_open_pages(user_id: int) -> int:
    """Send every open page of `user_id` to `/login`; returns how many were open."""
    closed = 0
    for client_id in list(_clients_by_user.pop(user_id, set())):
        client = Client.instances.get(client_id)
        if client is not None:
            client.open('/login')
            closed += 1
    return closed


def show_team(view: TeamView) -> None:
    _team_views.add(view)


def team_changed(organization_id: int) -> None:
    """Load the team again on every open page of this organization that shows it."""
    for view in list(_team_views):
        if view.organization_id != organization_id or view.client.is_deleted:
            continue
        # Event listeners remember the request they were registered under, and handlers read the signed-in user
        # from it: rows rebuilt because of someone else's action must still act as this page's own user. The
        # task copies the context as it is now.
        token = storage.request_contextvar.set(view.client.request)
        try:
            background_tasks.create(_reload(view), name='team reload')
        finally:
            storage.request_contextvar.reset(token)


async def _reload(view: TeamView) -> None:
    with view.client:
        await view.reload()
