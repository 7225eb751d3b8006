"""Tab `User Management`: Invite User and Invitations (admins, `team_invitations.py`) and Team Members (with Hold to
Remove, `team_members.py`).

Both lists are tables paged on the server (`ui/components/paged_table.py`: 25 rows a page, sorting and a search box):
the page holds only the rows it shows, as plain data, so memory and time stay the same whether the team has ten
people or a thousand. This module reads what both show in one transaction and shows it, now or, while the tab is
hidden, when it is shown again.
"""

from dataclasses import dataclass, field
from datetime import datetime

from nicegui import context, events, ui
from sqlmodel import Session

from models import Role, User, UserStatus
from services.identity import attempts, invitations, two_factor
from services.team import members
from ui import actions, open_pages
from ui.components.paged_table import PAGE_SIZE, PageQuery
from ui.tabs.team_invitations import Invitations
from ui.tabs.team_members import MemberQuery, Members

# Phones (below Quasar's `sm`, 600 px): each row becomes a card of its own, every value under its label, so nothing
# scrolls sideways and nothing loses its meaning. The labels are real text, shown only there.
_CSS = """
.cxt-team-table .cxt-cell-label { display: none; }
.cxt-team-table tbody td { white-space: normal; }
@media (max-width: 599.98px) {
  .cxt-team-table thead { display: none; }
  .cxt-team-table .q-table, .cxt-team-table tbody { display: block; }
  .cxt-team-table tbody tr { display: flex; flex-direction: column; align-items: flex-start; gap: 6px; height: auto;
    border: 1px solid #d1d5db; border-radius: 4px; padding: 8px; margin-bottom: 8px; }
  .cxt-team-table tbody td { display: block; height: auto; padding: 0; border: none; width: 100%; }
  .cxt-team-table .cxt-cell-label { display: block; font-size: 12px; line-height: 16px; color: #5f6368;
    text-transform: uppercase; }
}
"""
ui.add_css(_CSS, shared=True)


@dataclass(frozen=True)
class TeamPage:
    """What the tab shows, read in one transaction."""

    viewer: User | None  # the page's own user as stored now (None once removed)
    members: members.MemberPage
    invitations: invitations.InvitationPage | None
    locked: set[str]  # members on this page who cannot sign in right now after too many wrong passwords (admins)
    two_factor: frozenset[int] = frozenset()  # members on this page with a second factor an admin can reset
    last_sign_ins: dict[int, datetime] = field(default_factory=dict)  # members on this page (admins)


def _read(db: Session, user: User, member_query: MemberQuery, invitation_query: PageQuery | None) -> TeamPage:
    viewer = db.get(User, user.id)
    if viewer is None or viewer.status != UserStatus.ACTIVE:
        return TeamPage(viewer=None, members=members.MemberPage([], 0), invitations=None, locked=set())
    is_admin = viewer.role == Role.ADMIN
    team = _page_members(db, viewer, member_query, is_admin=is_admin)
    pending = _page_invitations(db, viewer, invitation_query) if is_admin and invitation_query is not None else None
    ids = [member.id for member in team.members if member.id is not None]
    return TeamPage(
        viewer=viewer,
        members=team,
        invitations=pending,
        locked=_locked(db, team, is_admin=is_admin),
        two_factor=frozenset(two_factor.with_second_factor(session=db, actor=viewer, user_ids=ids)),
        last_sign_ins=members.last_sign_ins(session=db, actor=viewer, user_ids=ids) if is_admin else {},
    )


def _page_members(db: Session, viewer: User, query: MemberQuery, *, is_admin: bool) -> members.MemberPage:
    return members.page_members(
        session=db,
        actor=viewer,
        search=query.search,
        sort_by=query.sort_by,
        descending=query.descending,
        offset=query.offset,
        limit=PAGE_SIZE,
        show=query.show if is_admin else members.MemberFilter.EVERYONE,
    )


def _page_invitations(db: Session, viewer: User, query: PageQuery) -> invitations.InvitationPage:
    return invitations.page_pending(
        session=db,
        actor=viewer,
        search=query.search,
        sort_by=query.sort_by,
        descending=query.descending if query.sort_by else None,
        offset=query.offset,
        limit=PAGE_SIZE,
    )


def _locked(db: Session, team: members.MemberPage, *, is_admin: bool) -> set[str]:
    """Members on the page who cannot sign in right now after too many wrong passwords (admins see it)."""
    emails = [member.email for member in team.members]
    return attempts.locked_emails(session=db, emails=emails) if is_admin else set()


async def build(*, user: User, tab: ui.tab | None = None, tabs: ui.tabs | None = None) -> 'TeamTab':
    """Build the tab (call it when the tab is first opened). With `tabs`, live updates reach it only while it is
    shown; a change made while it is hidden is read when it is shown again."""
    first = MemberQuery()
    invitation_query = PageQuery() if user.role == Role.ADMIN else None
    team = await actions.read(lambda db: _read(db, user, first, invitation_query))
    view = TeamTab(user=user, tab=tab, tabs=tabs)  # built with its rows: one message to the browser, not two
    await view.apply(team, generation=view.generation)
    return view


class TeamTab:
    def __init__(self, *, user: User, tab: ui.tab | None = None, tabs: ui.tabs | None = None) -> None:
        self.user = user
        self.organization_id = user.organization_id
        self.is_admin = user.role == Role.ADMIN
        self.client = context.client
        self.tab, self.tabs = tab, tabs
        self.stale = False
        self.generation = 0
        self.invitations = Invitations(user=user, reload=self.reload) if self.is_admin else None
        self.members = Members(user=user, reload=self.reload)
        open_pages.show_team(self)
        if tabs is not None:
            tabs.on_value_change(self._on_tab_change)

    @property
    def shown(self) -> bool:
        if self.tabs is None or self.tab is None:
            return True
        value = self.tabs.value
        return (value.props['name'] if isinstance(value, ui.tab) else value) == self.tab.props['name']

    async def _on_tab_change(self, _: events.ValueChangeEventArguments) -> None:
        if self.shown and self.stale:
            await self.reload()

    async def changed_elsewhere(self) -> None:
        """Someone changed the team: show the change now, or when the tab is shown again."""
        if self.shown:
            await self.reload()
        else:
            self.stale = True

    async def reload(self, *, again: bool = False) -> None:
        """Read the shown page of each list again (after a change here or anywhere else in the organization)."""
        self.stale = False
        self.generation += 1
        generation = self.generation
        member_query = self.members.query
        invitation_query = self.invitations.query if self.invitations is not None else None
        team = await actions.read(lambda db: _read(db, self.user, member_query, invitation_query))
        await self.apply(team, generation=generation, again=again)

    async def apply(self, team: TeamPage, *, generation: int, again: bool = False) -> None:
        """Show what `reload` (number `generation`) read."""
        if generation != self.generation:
            return  # a newer read (another page, sort or search) started meanwhile: its answer is the one to show
        if team.viewer is None:
            return  # removed: ending their sessions sends this page to /login
        if team.viewer.role != self.user.role:
            # Promoted or demoted: the whole dashboard changes (buttons, tabs), so load it again and say why.
            open_pages.open_after_role_change(self.client)
            return
        if self._show(team):
            self.stale = True
        if self.stale and self.shown and not again:
            await self.reload(again=True)  # the shown page went away (its last rows left): show the new last page

    def _show(self, team: TeamPage) -> bool:
        """Show both lists; True when a shown page went away (its last rows left) and the new last page is to be
        read."""
        gone = self.members.show(
            team.members, locked=team.locked, two_factor=team.two_factor, last_sign_ins=team.last_sign_ins
        )
        if team.invitations is not None and self.invitations is not None:
            gone = self.invitations.show(team.invitations) or gone
        return gone
