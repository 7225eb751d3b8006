"""Tab `User Management`: Invite User, Invitations and Team Members (with Hold to Remove)."""

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nicegui import context, events, ui
from sqlmodel import Session

from models import DeliveryStatus, Role, User, UserStatus
from services import attempts, auth, invitations, members
from services.config import current_settings
from services.db import write_scope
from services.errors import ServiceError
from ui import actions, open_pages
from ui.components.hold_button import HoldButton

ROLE_OPTIONS = {role.value: role.label for role in (Role.MEMBER, Role.ADMIN)}
STATUS_COLORS = {DeliveryStatus.SENT: 'text-positive', DeliveryStatus.FAILED: 'text-negative'}


@dataclass(frozen=True)
class TeamLists:
    """What the tab shows, read in one transaction."""

    viewer: User | None  # the page's own user as stored now (None once removed)
    invitations: list[invitations.PendingInvitation]
    members: list[User]
    locked: set[str]  # members who cannot sign in right now after too many wrong passwords (admins see it)


async def build(*, user: User) -> None:
    lists = await actions.read(lambda db: _team_lists(db, user))
    TeamTab(user=user, lists=lists)


def _team_lists(db: Session, user: User) -> TeamLists:
    viewer = db.get(User, user.id)
    if viewer is None or viewer.status != UserStatus.ACTIVE:
        return TeamLists(viewer=None, invitations=[], members=[], locked=set())
    is_admin = viewer.role == Role.ADMIN
    pending = invitations.list_pending(session=db, actor=viewer) if is_admin else []
    team = members.list_members(session=db, actor=viewer)
    locked = attempts.locked_emails(session=db, emails=[member.email for member in team]) if is_admin else set()
    return TeamLists(viewer=viewer, invitations=pending, members=team, locked=locked)


def _anchored(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Run a handler inside the tab's anchor, which outlives the list rows the handler's button lives in."""

    @functools.wraps(handler)
    async def run_anchored(self: 'TeamTab', *args: Any, **kwargs: Any) -> None:
        with self.anchor:
            await handler(self, *args, **kwargs)

    return run_anchored


class TeamTab:
    def __init__(self, *, user: User, lists: TeamLists) -> None:
        self.user = user
        self.organization_id = user.organization_id
        self.is_admin = user.role == Role.ADMIN
        self.client = context.client
        # Handlers of buttons inside the lists run on after a refresh may have deleted those buttons; they put
        # their notifications and dialogs here instead.
        self.anchor = ui.element('div').classes('hidden')
        if self.is_admin:
            self._invite_card()
            with ui.card().classes('w-full'):
                ui.label('Invitations').classes('text-h6')
                self.invitation_list(lists.invitations)
        with ui.card().classes('w-full'):
            ui.label('Team Members').classes('text-h6')
            self.member_list(lists.members, lists.locked)
        open_pages.show_team(self)

    async def reload(self) -> None:
        """Load both lists again (after a change here or anywhere else in the organization)."""
        lists = await actions.read(lambda db: _team_lists(db, self.user))
        if lists.viewer is not None and lists.viewer.role != self.user.role:
            # Promoted or demoted: the whole dashboard changes (buttons, tabs), so load it again.
            self.client.open('/')
            return
        if self.is_admin:
            self.invitation_list.refresh(lists.invitations)
        self.member_list.refresh(lists.members, lists.locked)

    # --- Invite User -------------------------------------------------------------------------------------------

    def _invite_card(self) -> None:
        with ui.card().classes('w-full'):
            ui.label('Invite User').classes('text-h6')
            with ui.row().classes('w-full items-start gap-3 flex-wrap'):
                self.email = (
                    ui.input('Email').props('type=email autocomplete=off maxlength=254').classes('flex-1 min-w-[16rem]')
                )
                self.email.mark('invite-email')
                self.role = ui.select(ROLE_OPTIONS, value=Role.MEMBER.value, label='Role').classes('w-36')
                self.role.mark('invite-role')
                self.send_button = ui.button('Send Invite', icon='send', on_click=self.send_invite)
                self.send_button.props('no-caps').classes('q-mt-sm')
            self.email.on('keydown.enter', self.send_invite)
            if not current_settings().mail_configured:
                ui.label(
                    'No mail server is configured, so invitations are not emailed: copy each link and send it yourself.'
                ).classes('text-sm text-grey-8')

    @_anchored
    async def send_invite(self) -> None:
        email, role = self.email.value or '', self.role.value
        issued = await actions.act(
            lambda db, me: invitations.invite_member(session=db, actor=me.user, email=email, role=role, ip=me.ip),
            button=self.send_button,
            fields={'email': self.email, 'role': self.role},
        )
        if issued is None:
            return
        self.email.value = ''
        self.role.value = Role.MEMBER.value  # the next invitation starts from the safe choice again
        await self._deliver(issued, button=self.send_button)

    async def _deliver(self, issued: invitations.IssuedInvitation, *, button: ui.button | None = None) -> None:
        """Email a stored invitation off the event loop; the list shows `Sending…` meanwhile."""
        open_pages.team_changed(self.organization_id)
        if issued.delivery_status == DeliveryStatus.NOT_EMAILED:
            self._show_link(issued.email, issued.link)
            return
        outcome = await actions.submit(lambda: _send_and_record(issued), button=button)
        open_pages.team_changed(self.organization_id)
        if outcome is None:
            return
        if outcome == DeliveryStatus.SENT:
            ui.notify(f'Invitation sent to {issued.email}', type='positive')
        else:
            ui.notify(
                f'The invitation for {issued.email} is saved, but the email failed: {outcome}. '
                'Resend it or copy its link.',
                type='negative',
                multi_line=True,
                close_button='OK',
                timeout=0,
            )

    def _show_link(self, email: str, link: str) -> None:
        with ui.dialog() as dialog, ui.card().classes('w-full max-w-lg'):
            ui.label(f'Invitation created for {email}').classes('text-h6')
            ui.label(
                'No mail server is configured. Send this link to them yourself; it works once, for 7 days.'
            ).classes('text-body2')
            ui.input('Invitation link', value=link).props('readonly').classes('w-full font-mono').mark('invite-link')
            with ui.row().classes('w-full justify-end'):
                ui.button('Close', on_click=dialog.close).props('flat no-caps')
                ui.button('Copy link', icon='content_copy', on_click=lambda: self._copy(link)).props('no-caps')
        dialog.on('hide', dialog.delete)
        dialog.open()

    # --- Invitations -------------------------------------------------------------------------------------------

    @ui.refreshable_method
    def invitation_list(self, rows: list[invitations.PendingInvitation]) -> None:
        if not rows:
            ui.label('No pending invitations.').classes('text-body2 text-grey-8').mark('no-invitations')
            return
        with _stacking_table(
            'minmax(12rem,2fr)_auto_minmax(7rem,1fr)_auto_minmax(7rem,1fr)_auto',
            ('Email', 'Role', 'Invited by', 'Expires', 'Status', ''),
        ):
            for row in rows:
                with _table_row():
                    self._invitation_row(row)

    def _invitation_row(self, row: invitations.PendingInvitation) -> None:
        ui.label(row.email).classes('break-all').mark(f'invitation-email-{row.id}')
        ui.label(row.role.label)
        ui.label(row.invited_by)
        ui.label(_format_time(row.expires_at))
        with ui.column().classes('gap-0').mark(f'invitation-status-{row.id}'):
            ui.label(row.delivery_status.label).classes(STATUS_COLORS.get(row.delivery_status, 'text-grey-8'))
            if row.delivery_status == DeliveryStatus.FAILED and row.last_error:
                ui.label(row.last_error).classes('text-xs text-grey-8 break-words')
        with ui.row().classes('gap-1 no-wrap'):
            ui.button('Copy link', icon='content_copy', on_click=lambda: self.copy_link(row.id)).props(
                'flat dense no-caps'
            ).mark(f'copy-link-{row.id}')
            ui.button('Resend', icon='forward_to_inbox', on_click=lambda: self.resend(row.id)).props(
                'flat dense no-caps'
            ).mark(f'resend-{row.id}')
            ui.button('Revoke', icon='block', on_click=lambda: self.revoke(row.id)).props(
                'flat dense no-caps color=negative'
            ).mark(f'revoke-{row.id}')

    @_anchored
    async def copy_link(self, invitation_id: int) -> None:
        link = await actions.act(
            lambda db, me: invitations.invitation_link(session=db, actor=me.user, invitation_id=invitation_id),
            read_only=True,
        )
        if link is None:
            await self.reload()
            return
        self._copy(link)

    def _copy(self, link: str) -> None:
        ui.clipboard.write(link)
        ui.notify('Invitation link copied to the clipboard', type='positive')

    @_anchored
    async def resend(self, invitation_id: int) -> None:
        issued = await actions.act(
            lambda db, me: invitations.resend_invitation(
                session=db, actor=me.user, invitation_id=invitation_id, ip=me.ip
            )
        )
        if issued is None:
            await self.reload()
            return
        await self._deliver(issued)

    @_anchored
    async def revoke(self, invitation_id: int) -> None:
        invitation = await actions.act(
            lambda db, me: invitations.revoke_invitation(
                session=db, actor=me.user, invitation_id=invitation_id, ip=me.ip
            )
        )
        if invitation is not None:
            ui.notify(f'Invitation for {invitation.email} revoked', type='positive')
        open_pages.team_changed(self.organization_id)

    # --- Team Members ------------------------------------------------------------------------------------------

    @ui.refreshable_method
    def member_list(self, team: list[User], locked: set[str]) -> None:
        with _stacking_table(
            'minmax(8rem,1fr)_minmax(12rem,2fr)_auto_auto_auto', ('Name', 'Email', 'Role', 'Status', '')
        ):
            for member in team:
                with _table_row():
                    self._member_row(member, locked=member.email in locked)

    def _member_row(self, member: User, *, locked: bool) -> None:
        is_self = member.id == self.user.id
        ui.label(member.name).mark(f'member-name-{member.id}')
        ui.label(member.email).classes('break-all').mark(f'member-email-{member.id}')
        if self.is_admin and not is_self:
            ui.select(ROLE_OPTIONS, value=member.role, on_change=lambda e, m=member: self.change_role(e, m)).props(
                'dense outlined options-dense'
            ).classes('w-32').mark(f'member-role-{member.id}')
        else:
            ui.label(member.role).mark(f'member-role-{member.id}')
        with ui.row().classes('items-center gap-1 no-wrap').mark(f'member-status-{member.id}'):
            ui.label(member.status)
            if locked and self.is_admin:
                ui.label('locked').classes('text-negative')
                ui.button('Unlock', icon='lock_open', on_click=lambda m=member: self.unlock(m)).props(
                    'flat dense no-caps'
                ).mark(f'unlock-{member.id}')
        if is_self:
            ui.badge('You').props('outline').mark('own-row')
        elif self.is_admin:
            button = HoldButton('Hold to Remove', on_hold=lambda _, m=member: self.remove(m, button))
            button.props('outline dense').mark(f'remove-{member.id}')
        else:
            ui.label('')

    @_anchored
    async def change_role(self, event: events.ValueChangeEventArguments, member: User) -> None:
        if event.value == event.previous_value:
            return
        role, member_id = event.value, _id(member)
        changed = await actions.act(
            lambda db, me: members.change_role(
                session=db,
                actor=me.user,
                member_id=member_id,
                role=role,
                ip=me.ip,
                password_confirmed_at=me.password_confirmed_at,
            ),
            recent_password=True,
        )
        if changed is None:
            await self.reload()
            return
        ui.notify(f'{changed.email} is now {changed.role.label.lower()}', type='positive')
        open_pages.team_changed(self.organization_id)

    @_anchored
    async def unlock(self, member: User) -> None:
        email = member.email
        done = await actions.act(lambda db, me: auth.unlock(session=db, actor=me.user, email=email, ip=me.ip))
        if done is None:
            return
        ui.notify(f'{email} can sign in again', type='positive')
        await self.reload()

    @_anchored
    async def remove(self, member: User, button: HoldButton) -> None:
        """The hold completed in the browser: check everything again on the server, then end their sessions."""
        member_id = _id(member)
        removed = await actions.act(
            lambda db, me: members.remove_member(
                session=db,
                actor=me.user,
                member_id=member_id,
                ip=me.ip,
                password_confirmed_at=me.password_confirmed_at,
            ),
            recent_password=True,
        )
        if removed is None:
            button.reset()
            return
        open_pages.end_open_pages(member_id)
        ui.notify(f'{removed.email} removed', type='positive')
        open_pages.team_changed(self.organization_id)


def _send_and_record(issued: invitations.IssuedInvitation) -> DeliveryStatus | str:
    """The SMTP conversation outside any transaction, then its outcome in a short one. `SENT`, or the error."""
    try:
        invitations.send_invitation_email(issued)
        error = None
    except ServiceError as failure:
        error = str(failure)
    with write_scope() as db:
        invitations.record_delivery(session=db, issued=issued, error=error)
    return error or DeliveryStatus.SENT


def _id(member: User) -> int:
    assert member.id is not None, 'a listed member has been stored'
    return member.id


def _format_time(moment: datetime) -> str:
    return moment.strftime('%Y-%m-%d %H:%M UTC')


@contextmanager
def _stacking_table(columns: str, headings: tuple[str, ...]) -> Iterator[None]:
    """A grid table from `sm` up; below it (phones) every row stacks into a small card of its own, so nothing
    scrolls sideways. `columns` is a Tailwind grid template (underscores for spaces)."""
    with ui.element('div').classes(f'w-full grid gap-2 sm:gap-x-4 sm:items-center sm:grid-cols-[{columns}]'):
        for heading in headings:
            # max-sm:hidden, not hidden + sm:block: Quasar's .hidden is !important and would win on every width.
            ui.label(heading).classes('max-sm:hidden text-xs text-grey-7 uppercase')
        yield


@contextmanager
def _table_row() -> Iterator[None]:
    # `sm:contents` dissolves the wrapper on wider screens, so its cells sit in the table's own columns.
    with ui.element('div').classes(
        'flex flex-col items-start gap-1 rounded-borders border border-gray-300 q-pa-sm sm:contents'
    ):
        yield
