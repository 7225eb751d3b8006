"""The open pages of this process: whose they are, and which show the team or the API key, so a change reaches them
at once. Every change arrives as a bus event (`services/bus.py`): a change made in this process from this process's
bus once it commits, one made in another process over PostgreSQL `NOTIFY` (`services/events.py`); each is applied
once, the same way. No page handler refreshes other pages by hand."""

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode
from weakref import WeakKeyDictionary, WeakSet

from nicegui import background_tasks, context, core, run
from nicegui.client import Client

from models import User
from services import bus, crypto, events
from services.acting import SCOPES
from services.identity import sessions
from ui import nicegui_compat
from ui.session import COOKIE

log = logging.getLogger(__name__)


class TeamView(Protocol):
    """An open view of an organization's team (or of its API key) that can load itself again."""

    organization_id: int
    client: Client

    def reload(self) -> Awaitable[None]: ...


class SessionsView(Protocol):
    """An open list of one person's signed-in sessions (the Security page's)."""

    user_id: int
    client: Client

    def reload(self) -> Awaitable[None]: ...


_clients_by_user: dict[int, set[str]] = {}
_team_views: 'WeakSet[TeamView]' = WeakSet()  # type: ignore[type-var]  (a Protocol is fine at runtime)
_key_views: 'WeakSet[TeamView]' = WeakSet()  # type: ignore[type-var]
_subdomain_views: 'WeakSet[TeamView]' = WeakSet()  # type: ignore[type-var]
_sent_after_role_change: 'WeakSet[Client]' = WeakSet()
_session_views: 'WeakSet[SessionsView]' = WeakSet()  # type: ignore[type-var]
_listener: asyncio.Task[None] | None = None
_reloads: 'WeakKeyDictionary[TeamView | SessionsView, asyncio.Task[None]]' = WeakKeyDictionary()  # type: ignore[type-var]


def track_page(user: User) -> None:
    """Remember that this page belongs to `user`, so ending their sessions can close it at once."""
    assert user.id is not None
    user_id, client = user.id, context.client
    _clients_by_user.setdefault(user_id, set()).add(client.id)
    client.on_delete(lambda: _clients_by_user.get(user_id, set()).discard(client.id))


ROLE_CHANGED_URL = '/?role=changed'


def role_changed(user_id: int) -> int:
    """Load every open page of `user_id` again after their role changed, saying so; returns how many."""
    opened = 0
    for client_id in list(_clients_by_user.get(user_id, set())):
        client = Client.instances.get(client_id)
        if client is not None and not client.is_deleted:
            open_after_role_change(client)
            opened += 1
    return opened


def open_after_role_change(client: Client) -> None:
    if client in _sent_after_role_change:
        return  # already on its way (told by this process and by its team list)
    _sent_after_role_change.add(client)
    client.open(ROLE_CHANGED_URL)


def removed_url(organization: str) -> str:
    """`/login` saying `You were removed from <organization>`; signed, so nobody can make it say something else."""
    return '/login?' + urlencode({'removed': organization, 'sig': _sign(organization)})


def removed_notice(organization: str | None, signature: str | None) -> str | None:
    """What `/login` says to someone just removed (None unless `removed_url` made the parameters)."""
    if not organization or not signature or not hmac.compare_digest(_sign(organization), signature):
        return None
    return f'You were removed from {organization}'


def _sign(text: str) -> str:
    return crypto.keyed_digest('removed-notice', text)[:32]


def show_team(view: TeamView) -> None:
    _team_views.add(view)


def show_keys(view: TeamView) -> None:
    _key_views.add(view)


def show_subdomains(view: TeamView) -> None:
    _subdomain_views.add(view)


def show_sessions(view: SessionsView) -> None:
    _session_views.add(view)


def sessions_changed(user_id: int | None, *, but: Collection[str] = ()) -> None:
    """List the sessions again on every open Security page of `user_id` (of everyone for None), except on the pages
    (client ids) in `but`."""
    for view in list(_session_views):
        if view.client.is_deleted or (user_id is not None and view.user_id != user_id) or view.client.id in but:
            continue
        _start_reload(view)


def team_changed(organization_id: int | None) -> None:
    """Load the team again on every open page of this organization (of every one for None) that shows it."""
    _reload_all(_team_views, organization_id)


def keys_changed(organization_id: int | None) -> None:
    """Load the API key card again on every open page of this organization (of every one for None); the card that
    made the change shows it itself (with the new key, once: `own_change_shown`)."""
    _reload_all(_key_views, organization_id)


def subdomains_changed(organization_id: int | None) -> None:
    """Load the Kustomer subdomains again on every open page of this organization (of every one for None)."""
    _reload_all(_subdomain_views, organization_id)


def _reload_all(views: 'WeakSet[TeamView]', organization_id: int | None) -> None:
    for view in list(views):
        if (organization_id is not None and view.organization_id != organization_id) or view.client.is_deleted:
            continue
        _start_reload(view)


@dataclass
class _Action:
    running: int = 0
    waiting: list[TeamView | SessionsView] = field(default_factory=list)
    sends: dict[str, str] = field(default_factory=dict)  # where its page goes if it does not go elsewhere itself


_actions: dict[str, _Action] = {}  # pages with an action in flight, by client id


@contextmanager
def acting() -> Iterator[None]:
    """Around one action of this page (`ui/actions.py`): the reloads its own change brings wait until the action has
    returned, so the page may show the change itself first and drop them (`own_change_shown`). The bus delivers a
    change on the committing thread, which may be well before the action's result reaches the page."""
    try:
        client_id = context.client.id
    except RuntimeError:  # not on a page
        yield
        return
    action = _actions.setdefault(client_id, _Action())
    action.running += 1
    try:
        yield
    finally:
        action.running -= 1
        if action.running == 0:
            del _actions[client_id]
            for view in dict.fromkeys(action.waiting):
                _start_reload(view)
            for waiting_client, target in action.sends.items():
                # A task: it runs once the handler has gone on from its action (and said where it goes, if it does).
                background_tasks.create(_send_later(waiting_client, target), name='send away')


def leaving() -> None:
    """This page goes elsewhere itself after its own change ended its session (`Sign out everywhere`: to `/login`
    saying so): the plain `/login` the same change brings through the bus must not overtake it."""
    _mark_leaving(context.client)


def _mark_leaving(client: Client) -> None:
    if client.id not in _leaving:
        _leaving.add(client.id)
        client.on_delete(lambda: _leaving.discard(client.id))


# Pages on their way elsewhere, by client id: by themselves (`leaving`) or sent (`_send_away`). Nothing reloads them
# any more: a session list reloaded there would find the session ended and send the page to a plain `/login`.
_leaving: set[str] = set()


def own_change_shown(view: TeamView | SessionsView) -> None:
    """`view` made the change and shows it itself (a new key, once): drop the reload its own change brought (started
    as its action returned, so it has not run yet)."""
    task = _reloads.pop(view, None)
    if task is not None and not task.done():
        task.cancel()


def _start_reload(view: TeamView | SessionsView) -> None:
    if Client.instances.get(view.client.id) is not view.client:
        return  # a page this process no longer serves (its person's id may belong to someone else's page now)
    if view.client.id in _leaving:
        return  # a removal's second event finds no page of its person left and reloads their lists: not this one
    action = _actions.get(view.client.id)
    if action is not None:
        action.waiting.append(view)
        return
    # Event listeners remember the request they were registered under, and handlers read the signed-in user from it:
    # rows rebuilt because of someone else's action must still act as this page's own user. The task copies the
    # context as it is now.
    with nicegui_compat.acting_as_page_of(view.client):
        _reloads[view] = background_tasks.create(_reload(view), name='view reload')


async def _reload(view: TeamView | SessionsView) -> None:
    with view.client:
        # A view that is not shown right now (a hidden tab) may put the reload off until it is shown.
        changed_elsewhere = getattr(view, 'changed_elsewhere', None)
        await (changed_elsewhere() if changed_elsewhere is not None else view.reload())


async def end_ended_sessions(user_id: int | None) -> int:
    """Send to `/login` each open page (of `user_id`, or of anyone for None) whose session the database no longer
    knows; returns how many. Events only say whom to look at: the session rows decide. Open session lists of the
    same people drop the ended ones."""
    pages = _open_pages_with_tokens(user_id)
    ended = (await run.io_bound(_ended_pages, pages) or {}) if pages else {}  # None: the process is shutting down
    sent = sum(_send_away(client_id, target) for client_id, target in ended.items())
    # Not on the pages just sent away: their list, reloaded, would find the session ended and go to a plain `/login`,
    # overtaking where they were sent (`You were removed from ...`).
    sessions_changed(user_id, but=ended.keys())
    return sent


def _open_pages_with_tokens(user_id: int | None) -> dict[str, tuple[int, str | None]]:
    """The open pages of `user_id` (of anyone for None), each with its person and its session token."""
    pages: dict[str, tuple[int, str | None]] = {}
    for owner in [user_id] if user_id is not None else list(_clients_by_user):
        for client_id in _clients_by_user.get(owner, set()):
            client = Client.instances.get(client_id)
            if client is not None and not client.is_deleted:
                request = client.request
                token = sessions.token_from_cookie(request.cookies.get(COOKIE)) if request else None
                pages[client_id] = (owner, token)
    return pages


def _send_away(client_id: str, target: str) -> bool:
    """Open `target` on a page whose session ended, unless a check that ran beside this one (a removal ends the
    sessions too: two events) has already sent it, or the page goes elsewhere itself (`leaving`). A page whose own
    action is still running is sent once that action has returned."""
    action = _actions.get(client_id)
    if action is not None:
        action.sends[client_id] = target
        return True
    tracked = [clients for clients in _clients_by_user.values() if client_id in clients]
    for clients in tracked:
        clients.discard(client_id)
    client = Client.instances.get(client_id)
    if not tracked or client is None or client.is_deleted or client_id in _leaving:
        return False
    _mark_leaving(client)
    client.open(target)
    return True


async def _send_later(client_id: str, target: str) -> None:
    _send_away(client_id, target)


def _ended_pages(pages: dict[str, tuple[int, str | None]]) -> dict[str, str]:
    """Which pages' sessions have ended, each with where it goes: `/login`, saying so when its person was removed."""
    ended = SCOPES.reading(lambda db: sessions.ended_pages(session=db, pages=pages))
    return {
        client_id: '/login' if removed_from is None else removed_url(removed_from)
        for client_id, removed_from in ended.items()
    }


async def apply_event(event: events.Event) -> None:
    """Bring this process's open pages up to date with a change made in another process (this process's own
    changes reach them from its bus)."""
    if not event.from_this_process:
        await _apply(event)


def _on_committed(change: bus.Event) -> None:
    """The bus's subscriber: on the committing thread, so the pages are updated on the event loop."""
    said = events.about(change)
    loop = core.loop
    if said is not None and loop is not None and loop.is_running():
        loop.call_soon_threadsafe(lambda: background_tasks.create(_apply(said), name='bus event'))


async def _apply(event: events.Event) -> None:
    # Every reload starts before the first await: the page that acted finds its own reload already waiting.
    organization_id, user_id = event.organization_id, event.user_id
    if organization_id:
        for reload_views in _ORGANIZATION_VIEWS.get(event.kind, ()):
            reload_views(organization_id)  # each reload checks the viewer's role and session itself
    if event.kind == events.EventKind.ROLE_CHANGED and user_id:
        role_changed(user_id)  # their open pages, whichever tab they show
    if event.kind in {events.EventKind.MEMBER_REMOVED, events.EventKind.SESSIONS_ENDED} and user_id:
        await end_ended_sessions(user_id)


# Which open views of the organization show each kind of change (a subdomain field its person is typing in keeps
# what they typed).
_ORGANIZATION_VIEWS: dict[events.EventKind, tuple[Callable[[int], None], ...]] = {
    events.EventKind.TEAM_CHANGED: (team_changed,),
    events.EventKind.ROLE_CHANGED: (team_changed,),
    events.EventKind.MEMBER_REMOVED: (team_changed,),
    events.EventKind.KEY_CHANGED: (keys_changed,),
    events.EventKind.SUBDOMAINS_SAVED: (subdomains_changed,),
}


bus.subscribe(_on_committed)


async def _catch_up() -> None:
    # Events sent while the connection was down are lost: look at every open page again.
    await end_ended_sessions(None)
    team_changed(None)
    keys_changed(None)
    subdomains_changed(None)


def follow_other_processes(database_url: str) -> None:
    """Start applying other processes' changes to this process's pages (PostgreSQL; call at start-up)."""
    global _listener
    first = True

    async def on_listening() -> None:
        nonlocal first
        if not first:
            await _catch_up()
        first = False

    _listener = background_tasks.create(
        events.listen(database_url, apply_event, on_listening=on_listening), name='cross-process events'
    )


def stop_following() -> None:
    global _listener
    if _listener is not None:
        _listener.cancel()
        _listener = None
