"""Tab `User Management`: Invite User, Invitations and Team Members (with Hold to Remove)."""

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from weakref import WeakSet

from nicegui import context, events, run, storage, ui

from models import Role, User
from services import invitations, members
from services.config import current_settings
from services.db import write_scope
from services.errors import ServiceError, ValidationFailed
from ui import session, theme
from ui.components.busy import busy
from ui.components.hold_button import HoldButton

ROLE_OPTIONS = {Role.MEMBER.value: 'Member', Role.ADMIN.value: 'Admin'}

# Every open User Management tab, so a change made elsewhere (an accepted invitation, another admin's action)
# shows up at once without a reload.
_open_tabs: 'WeakSet[TeamTab]' = WeakSet()


def build(*, user: User) -> None:
    TeamTab(user=user)


def team_changed(organization_id: int) -> None:
    """Rebuild the team lists on every open page of this organization."""
    for tab in list(_open_tabs):
        if tab.organization_id != organization_id or tab.client.is_deleted:
            continue
        # Event listeners remember the request they were registered under, and handlers read the signed-in user
        # from it: rows rebuilt because of someone else's action must still act as this page's own user.
        token = storage.request_contextvar.set(tab.client.request)
        try:
            tab.refresh()
        finally:
            storage.request_contextvar.reset(token)


def _anchored(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Run a handler inside the tab's anchor, which outlives the list rows the handler's button lives in."""

    @functools.wraps(handler)
    async def run_anchored(self: 'TeamTab', *args: Any, **kwargs: Any) -> None:
        with self.anchor:
            await handler(self, *args, **kwargs)

    return run_anchored


class TeamTab:
    def __init__(self, *, user: User) -> None:
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
                self.invitation_list()
        with ui.card().classes('w-full'):
            ui.label('Team Members').classes('text-h6')
            self.member_list()
        _open_tabs.add(self)

    def refresh(self) -> None:
        with write_scope() as db:
            fresh = db.get(User, self.user.id)
        if fresh is not None and fresh.status == 'active' and fresh.role != self.user.role:
            # Promoted or demoted: the whole dashboard changes (buttons, tabs), so load it again.
            self.client.open('/')
            return
        if self.is_admin:
            self.invitation_list.refresh()
        self.member_list.refresh()

    # --- Invite User -------------------------------------------------------------------------------------------

    def _invite_card(self) -> None:
        with ui.card().classes('w-full'):
            ui.label('Invite User').classes('text-h6')
            with ui.row().classes('w-full items-start gap-3 flex-wrap'):
                self.email = ui.input('Email').props('type=email autocomplete=off').classes('flex-1 min-w-[16rem]')
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
        user = session.acting_user()
        if user is None:
            return
        fields = {'email': self.email, 'role': self.role}
        theme.clear_field_errors(fields)
        try:
            with write_scope() as db:
                issued = invitations.invite_member(
                    session=db, actor=user, email=self.email.value or '', role=self.role.value, ip=session.client_ip()
                )
        except ValidationFailed as error:
            theme.show_field_error(fields, error.field, str(error))
            return
        except ServiceError as error:
            ui.notify(str(error), type='negative')
            return
        self.email.value = ''
        with busy(self.send_button):
            await self._deliver(issued)

    async def _deliver(self, issued: invitations.IssuedInvitation) -> None:
        """Email a stored invitation off the event loop; the list shows `Sending…` meanwhile."""
        team_changed(self.organization_id)
        if issued.delivery_status == 'not_emailed':
            self._show_link(issued.email, issued.link)
            return
        error = await run.io_bound(_send_and_record, issued)
        team_changed(self.organization_id)
        if error is None:
            ui.notify(f'Invitation sent to {issued.email}', type='positive')
        else:
            ui.notify(
                f'The invitation for {issued.email} is saved, but the email failed: {error}. '
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
    def invitation_list(self) -> None:
        try:
            with write_scope() as db:
                rows = invitations.list_pending(session=db, actor=self.user)
        except ServiceError as error:  # demoted meanwhile: the next page load hides this card
            ui.label(str(error)).classes('text-body2 text-grey-8')
            return
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
        ui.label(row.role_label)
        ui.label(row.invited_by)
        ui.label(_format_time(row.expires_at))
        with ui.column().classes('gap-0').mark(f'invitation-status-{row.id}'):
            color = {'sent': 'text-positive', 'failed': 'text-negative'}.get(row.delivery_status, 'text-grey-8')
            ui.label(row.status_label).classes(color)
            if row.delivery_status == 'failed' and row.last_error:
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
        user = session.acting_user()
        if user is None:
            return
        try:
            with write_scope() as db:
                link = invitations.invitation_link(session=db, actor=user, invitation_id=invitation_id)
        except ServiceError as error:
            ui.notify(str(error), type='negative')
            self.invitation_list.refresh()
            return
        self._copy(link)

    def _copy(self, link: str) -> None:
        ui.clipboard.write(link)
        ui.notify('Invitation link copied to the clipboard', type='positive')

    @_anchored
    async def resend(self, invitation_id: int) -> None:
        user = session.acting_user()
        if user is None:
            return
        try:
            with write_scope() as db:
                issued = invitations.resend_invitation(
                    session=db, actor=user, invitation_id=invitation_id, ip=session.client_ip()
                )
        except ServiceError as error:
            ui.notify(str(error), type='negative')
            self.invitation_list.refresh()
            return
        await self._deliver(issued)

    @_anchored
    async def revoke(self, invitation_id: int) -> None:
        user = session.acting_user()
        if user is None:
            return
        try:
            with write_scope() as db:
                invitation = invitations.revoke_invitation(
                    session=db, actor=user, invitation_id=invitation_id, ip=session.client_ip()
                )
        except ServiceError as error:
            ui.notify(str(error), type='negative')
        else:
            ui.notify(f'Invitation for {invitation.email} revoked', type='positive')
        team_changed(self.organization_id)

    # --- Team Members ------------------------------------------------------------------------------------------

    @ui.refreshable_method
    def member_list(self) -> None:
        with write_scope() as db:
            team = members.list_members(session=db, actor=self.user)
        with _stacking_table(
            'minmax(8rem,1fr)_minmax(12rem,2fr)_auto_auto_auto', ('Name', 'Email', 'Role', 'Status', '')
        ):
            for member in team:
                with _table_row():
                    self._member_row(member)

    def _member_row(self, member: User) -> None:
        is_self = member.id == self.user.id
        ui.label(member.name).mark(f'member-name-{member.id}')
        ui.label(member.email).classes('break-all').mark(f'member-email-{member.id}')
        if self.is_admin and not is_self:
            ui.select(ROLE_OPTIONS, value=member.role, on_change=lambda e, m=member: self.change_role(e, m)).props(
                'dense outlined options-dense'
            ).classes('w-32').mark(f'member-role-{member.id}')
        else:
            ui.label(member.role).mark(f'member-role-{member.id}')
        ui.label(member.status).mark(f'member-status-{member.id}')
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
        user = session.acting_user()
        if user is None:
            return
        try:
            with write_scope() as db:
                changed = members.change_role(
                    session=db, actor=user, member_id=member.id, role=event.value, ip=session.client_ip()
                )
        except ServiceError as error:
            ui.notify(str(error), type='negative')
            self.member_list.refresh()
            return
        ui.notify(f'{changed.email} is now {ROLE_OPTIONS[changed.role].lower()}', type='positive')
        team_changed(self.organization_id)

    @_anchored
    async def remove(self, member: User, button: HoldButton) -> None:
        """The hold completed in the browser: check everything again on the server, then end their sessions."""
        user = session.acting_user()
        if user is None:
            return
        if not await session.ensure_recent_password(user):
            button.reset()
            return
        try:
            with write_scope() as db:
                removed = members.remove_member(
                    session=db,
                    actor=user,
                    member_id=member.id,
                    ip=session.client_ip(),
                    password_confirmed_at=session.password_confirmed_at(),
                )
        except ServiceError as error:
            ui.notify(str(error), type='negative')
            button.reset()
            return
        session.end_open_pages(removed.id)
        ui.notify(f'{removed.email} removed', type='positive')
        team_changed(self.organization_id)


def _send_and_record(issued: invitations.IssuedInvitation) -> str | None:
    """Runs in a worker thread: the SMTP conversation, then the outcome in its own short transaction."""
    try:
        invitations.send_invitation_email(issued)
        error = None
    except ServiceError as failure:
        error = str(failure)
    with write_scope() as db:
        invitations.record_delivery(session=db, issued=issued, error=error)
    return error


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
