"""`Invite User` and the `Invitations` list of the User Management tab (admins).

The list is a `PagedTable` paged, sorted and searched on the server; its row template draws each invitation's
actions (`Copy link`, `Resend`, `Revoke`), which come back as table events carrying the invitation's id.
"""

from collections.abc import Awaitable, Callable
from dataclasses import replace

from nicegui import events, ui

from models import DeliveryStatus, Role, User
from services.acting import SCOPES
from services.config import current_settings
from services.identity import invitations
from ui import actions, theme
from ui.components import times
from ui.components.paged_table import PagedTable, PageQuery, anchored, cell_label, search_box
from ui.tabs.team_members import ROLE_OPTIONS

# Green-9 rather than Quasar's `positive`: 5:1 against white, where `positive` gives 2.6:1.
STATUS_COLORS = {DeliveryStatus.SENT: 'text-green-9', DeliveryStatus.FAILED: 'text-negative'}
RESENT = 'The earlier link no longer works.'
EXPIRED = 'Expired'

INVITATION_COLUMNS = [
    {'name': 'email', 'label': 'Email', 'field': 'email', 'sortable': True, 'align': 'left'},
    {'name': 'role', 'label': 'Role', 'field': 'role_label', 'sortable': True, 'align': 'left'},
    {'name': 'invited_by', 'label': 'Invited by', 'field': 'invited_by', 'align': 'left'},
    {'name': 'expires', 'label': 'Expires', 'field': 'expires', 'sortable': True, 'align': 'left'},
    {'name': 'status', 'label': 'Status', 'field': 'status', 'align': 'left'},
    {'name': 'actions', 'label': 'Actions', 'field': 'id', 'align': 'left'},
]


def _row_template(prefix: str) -> str:
    email_id = f"'{prefix}-' + props.row.id"
    return f"""
<tr class="q-tr" :key="props.key">
  <td class="q-td text-left break-all">{cell_label('Email')}
    <span :id="{email_id}">{{{{ props.row.email }}}}</span></td>
  <td class="q-td text-left">{cell_label('Role')}<span>{{{{ props.row.role_label }}}}</span></td>
  <td class="q-td text-left">{cell_label('Invited by')}<span>{{{{ props.row.invited_by }}}}</span></td>
  <td class="q-td text-left">{cell_label('Expires')}<span>{{{{ props.row.expires }}}}</span></td>
  <td class="q-td text-left">{cell_label('Status')}
    <div :class="props.row.status_class">{{{{ props.row.status }}}}</div>
    <div v-if="props.row.error" class="text-xs text-grey-8" style="overflow-wrap: anywhere">
      {{{{ props.row.error }}}}</div>
  </td>
  <td class="q-td text-left">
    <div class="row no-wrap items-center q-gutter-x-xs">
      <button v-if="!props.row.expired" type="button" class="cxt-action" :aria-describedby="{email_id}"
        @click="$parent.$emit('copy_link', props.row.id)">Copy link</button>
      <button type="button" class="cxt-action" :aria-describedby="{email_id}"
        @click="$parent.$emit('resend', props.row.id)">Resend</button>
      <button v-if="!props.row.expired" type="button" class="cxt-action text-negative"
        :aria-describedby="{email_id}" @click="$parent.$emit('revoke', props.row.id)">Revoke</button>
    </div>
  </td>
</tr>
"""


class Invitations:
    """The `Invite User` card and the `Invitations` card; `reload` reads the whole tab again."""

    def __init__(self, *, user: User, reload: Callable[[], Awaitable[None]]) -> None:
        self.user = user
        self.organization_id = user.organization_id
        self.reload = reload
        self.query = PageQuery()
        self._invite_card()
        self._invitations_card()

    # --- Invite User -------------------------------------------------------------------------------------------

    def _invite_card(self) -> None:
        with ui.card().classes('w-full'):
            theme.heading('Invite User', level=2)
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

    @anchored
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
        again = f' {RESENT}' if issued.resent else ''
        if issued.delivery_status == DeliveryStatus.NOT_EMAILED:
            self._show_link(issued.email, issued.link, resent=issued.resent)
            return
        outcome = await actions.submit(lambda: _send_and_record(issued), button=button)
        if outcome is None:
            return
        if outcome == DeliveryStatus.SENT:
            if issued.resent:
                ui.notify(f'Invitation sent again to {issued.email}.{again}', type='positive')
            else:
                ui.notify(f'Invitation sent to {issued.email}', type='positive')
        else:
            ui.notify(
                f'The invitation for {issued.email} is saved, but the email failed: {outcome}. '
                f'Resend it or copy its link.{again}',
                type='negative',
                multi_line=True,
                close_button='OK',
                timeout=0,
            )

    def _show_link(self, email: str, link: str, *, resent: bool = False) -> None:
        title = f'Invitation renewed for {email}' if resent else f'Invitation created for {email}'
        with theme.dialog_card(title) as dialog:
            if resent:
                ui.label(RESENT).classes('text-body2 text-weight-medium').mark('earlier-link-dead')
            ui.label(
                'No mail server is configured. Send this link to them yourself; it works once, for 7 days.'
            ).classes('text-body2')
            ui.input('Invitation link', value=link).props('readonly').classes('w-full font-mono').mark('invite-link')
            with ui.row().classes('w-full justify-end'):
                ui.button('Close', on_click=dialog.close).props('flat no-caps')
                ui.button('Copy link', icon='content_copy', on_click=lambda: self._copy(link)).props('no-caps')
        dialog.open()

    # --- Invitations -------------------------------------------------------------------------------------------

    def _invitations_card(self) -> None:
        with ui.card().classes('w-full'):
            theme.heading('Invitations', level=2)
            self.no_invitations = ui.label('No pending invitations.').classes('text-body2 text-grey-8')
            self.no_invitations.mark('no-invitations')
            self.search = search_box('Search invitations', self._search)
            self.search.mark('invitation-search')
            self.table = PagedTable(columns=INVITATION_COLUMNS, shown=_texts)
            self.anchor = self.table.anchor
            self.table.props('no-data-label="No invitation matches the search."').classes('w-full cxt-team-table')
            self.table.add_slot('body', _row_template(f'cxt-i{self.table.id}'))
            self.table.mark('invitation-table')
            self.table.on('request', self._request)
            self.table.on_row('copy_link', self.copy_link)
            self.table.on_row('resend', self.resend)
            self.table.on_row('revoke', self.revoke)

    def show(self, page: invitations.InvitationPage) -> bool:
        """Show a page of invitations; True when the shown page went away (its last rows left) and the new last
        page is to be read."""
        gone = bool(page.total and not page.invitations and self.query.page > 1)
        if gone:
            self.query = self.query.last_page(page.total)
        empty = page.total == 0 and not self.query.search
        self.no_invitations.set_visibility(empty)
        self.search.set_visibility(not empty)
        self.table.set_visibility(not empty)
        self.table.show_page([_row(row) for row in page.invitations], total=page.total, query=self.query)
        return gone

    async def _request(self, event: events.GenericEventArguments) -> None:
        self.query = self.query.from_request(event.args)
        await self.reload()

    async def _search(self, text: str) -> None:
        self.query = replace(self.query, search=text, page=1)
        await self.reload()

    @anchored
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

    @anchored
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
        self.search.run_method('focus')

    @anchored
    async def revoke(self, invitation_id: int) -> None:
        invitation = await actions.act(
            lambda db, me: invitations.revoke_invitation(
                session=db, actor=me.user, invitation_id=invitation_id, ip=me.ip
            )
        )
        if invitation is not None:
            ui.notify(f'Invitation for {invitation.email} revoked', type='positive')
            self.search.run_method('focus')


def _texts(row: dict) -> list:
    texts = [row['email'], row['role_label'], row['invited_by'], row['expires'], row['status'], row['error'] or '']
    return [*texts, 'Resend'] if row['expired'] else [*texts, 'Copy link', 'Resend', 'Revoke']


def _row(row: invitations.PendingInvitation) -> dict:
    return {
        'id': row.id,
        'email': row.email,
        'role_label': row.role.label,
        'invited_by': row.invited_by,
        'expires': times.both(row.expires_at, times.now(), times.reader_zone()),
        'status': EXPIRED if row.expired else row.delivery_status.label,
        'status_class': 'text-negative' if row.expired else STATUS_COLORS.get(row.delivery_status, 'text-grey-8'),
        'error': row.last_error if row.delivery_status == DeliveryStatus.FAILED and not row.expired else None,
        'expired': row.expired,
    }


def _send_and_record(issued: invitations.IssuedInvitation) -> DeliveryStatus | str:
    """The SMTP conversation outside any transaction, then its outcome in a short one. `SENT`, or the error."""
    return invitations.deliver_invitation(scopes=SCOPES, issued=issued)
