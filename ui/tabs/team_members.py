"""The `Team Members` list of the User Management tab: everyone on the team; for admins, each teammate's role
selector and a `More actions` menu (`Copy reset link`, `Reset two-factor`, `Hold to Remove`), and `Unlock` for those
locked out after too many wrong passwords.

The list is a `PagedTable` paged, sorted, filtered and searched on the server; its row template draws the role
selector and the menu, whose actions come back as table events carrying the member's id. Every service checks them
again.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from nicegui import context, events, ui

from models import Role, User, UserStatus
from services.identity import auth, password_reset
from services.team import members
from ui import actions, theme
from ui.components import times
from ui.components.hold_button import HOLD_SECONDS, HoldButton, focus_after_hold, reset_fill
from ui.components.hold_button import TAG as HOLD_BUTTON
from ui.components.paged_table import PagedTable, PageQuery, anchored, cell_label, search_box
from ui.sections.two_factor_settings import reset_member_second_factor

ROLE_OPTIONS = {role.value: role.label for role in (Role.MEMBER, Role.ADMIN)}
REMOVE = 'Hold to Remove'
FOCUS_AFTER_DIALOG_MS = 400  # longer than a Quasar dialog's closing transition (300 ms)
COPY_RESET_LINK = 'Copy reset link'
RESET_TWO_FACTOR = 'Reset two-factor'
MORE_ACTIONS = 'More actions'
NEVER = 'Never'
TWO_FACTOR_ON, TWO_FACTOR_OFF = 'On', 'Off'
# What a role change does, said in its confirmation before it happens.
ROLE_CONSEQUENCES = {
    Role.ADMIN: '{name} will be able to reveal and rotate the API key, open billing, invite and remove people and '
    'change roles. Their open pages reload with the new permissions.',
    Role.MEMBER: '{name} will no longer be able to reveal or rotate the API key, open billing or manage the team. '
    'Their open pages reload with the new permissions.',
}
# The phone's sort control (the column headings are hidden there): (column, descending) for each choice.
SORT_CHOICES: dict[str, tuple[str | None, bool]] = {
    'joined': (None, False),
    'name': ('name', False),
    'name-desc': ('name', True),
    'email': ('email', False),
    'role': ('role', False),
}
SORT_LABELS = {
    'joined': 'Date joined',
    'name': 'Name (A to Z)',
    'name-desc': 'Name (Z to A)',
    'email': 'Email (A to Z)',
    'role': 'Role (admins first)',
}

_CSS = """
.cxt-role { font: inherit; padding: 4px 6px; border: 1px solid #757575; border-radius: 4px; background: white;
  min-width: 7rem; }
.cxt-role:focus-visible { outline: 2px solid var(--q-primary); outline-offset: 2px; }
.cxt-menu-hold { width: 100%; text-align: left; color: #c10015; }
.cxt-outline { border-color: currentColor; }
.cxt-you { display: inline-block; padding: 1px 8px; border: 1px solid currentColor; border-radius: 4px;
  color: #1f4fd1; font-size: 12px; line-height: 18px; }
"""
ui.add_css(_CSS, shared=True)

MEMBER_COLUMNS = [
    {'name': 'name', 'label': 'Name', 'field': 'name', 'sortable': True, 'align': 'left'},
    {'name': 'email', 'label': 'Email', 'field': 'email', 'sortable': True, 'align': 'left'},
    {'name': 'role', 'label': 'Role', 'field': 'role_label', 'sortable': True, 'align': 'left'},
    {'name': 'status', 'label': 'Status', 'field': 'status', 'align': 'left'},
    {'name': 'actions', 'label': 'Actions', 'field': 'id', 'align': 'left'},
]
# Admins see, before the actions, whether each teammate has a second factor and when they last signed in.
ADMIN_MEMBER_COLUMNS = [
    *MEMBER_COLUMNS[:-1],
    {'name': 'two_factor', 'label': 'Two-factor', 'field': 'two_factor_label', 'align': 'left'},
    {'name': 'last_sign_in', 'label': 'Last sign-in', 'field': 'last_sign_in', 'align': 'left'},
    MEMBER_COLUMNS[-1],
]


def _row_template(prefix: str) -> str:
    # A native select: 25 of them cost next to nothing to draw, and every browser and screen reader knows it.
    options = ''.join(f'<option value="{value}">{label}</option>' for value, label in ROLE_OPTIONS.items())
    name_id = f"'{prefix}-' + props.row.id"
    return f"""
<tr class="q-tr" :key="props.key">
  <td class="q-td text-left">{cell_label('Name')}<span :id="{name_id}">{{{{ props.row.name }}}}</span></td>
  <td class="q-td text-left break-all">{cell_label('Email')}<span>{{{{ props.row.email }}}}</span></td>
  <td class="q-td text-left">{cell_label('Role')}
    <select v-if="props.row.manageable" class="cxt-role" :value="props.row.role" :data-role-for="props.row.id"
      :aria-label="'Role for ' + props.row.name"
      @change="(event) => $parent.$emit('role', {{id: props.row.id, role: event.target.value}})">{options}</select>
    <span v-else>{{{{ props.row.role_label }}}}</span>
  </td>
  <td class="q-td text-left">{cell_label('Status')}<span>{{{{ props.row.status }}}}</span>
    <span v-if="props.row.locked" class="text-negative"> · locked</span></td>
  <td v-if="props.row.admin_view" class="q-td text-left">{cell_label('Two-factor')}
    <span>{{{{ props.row.two_factor_label }}}}</span></td>
  <td v-if="props.row.admin_view" class="q-td text-left">{cell_label('Last sign-in')}
    <span :title="props.row.last_sign_in_exact">{{{{ props.row.last_sign_in }}}}</span></td>
  <td class="q-td text-left">
    <span v-if="props.row.is_self" class="cxt-you">You</span>
    <q-btn v-else-if="props.row.manageable" flat round dense icon="more_vert" :data-member-menu="props.row.id"
      aria-label="{MORE_ACTIONS}" :aria-describedby="{name_id}">
      <q-menu anchor="bottom right" self="top right">
        <q-list role="none" class="cxt-row-menu" style="min-width: 13rem">
          <q-item role="menuitem" clickable v-close-popup @click="$parent.$emit('reset_link', props.row.id)">
            <q-item-section>{COPY_RESET_LINK}</q-item-section></q-item>
          <q-item v-if="props.row.two_factor" role="menuitem" clickable v-close-popup
            @click="$parent.$emit('reset_two_factor', props.row.id)">
            <q-item-section>{RESET_TWO_FACTOR}</q-item-section></q-item>
          <q-separator />
          <q-item role="none">
            <{HOLD_BUTTON} role="menuitem" class="cxt-action cxt-menu-hold" :seconds="{HOLD_SECONDS}"
              :data-member-hold="props.row.id" :aria-describedby="{name_id}"
              @hold_complete="$parent.$emit('hold_complete', props.row.id)"
              @hold_short="$parent.$emit('hold_short', props.row.id)">{REMOVE}</{HOLD_BUTTON}>
          </q-item>
        </q-list>
      </q-menu>
    </q-btn>
  </td>
</tr>
"""


@dataclass(frozen=True)
class MemberQuery(PageQuery):
    """A page of members: besides page, order and search, whom to show (admins filter by status)."""

    show: members.MemberFilter = members.MemberFilter.EVERYONE


class Members:
    """The `Team Members` card; `reload` reads the whole tab again."""

    def __init__(self, *, user: User, reload: Callable[[], Awaitable[None]]) -> None:
        self.user = user
        self.organization_id = user.organization_id
        self.is_admin = user.role == Role.ADMIN
        self.client = context.client
        self.reload = reload
        self.query = MemberQuery()
        self.two_factor_ids: frozenset[int] = frozenset()
        self.last_sign_ins: dict[int, datetime] = {}
        with ui.card().classes('w-full'):
            theme.heading('Team Members', level=2)
            with ui.row().classes('w-full items-start gap-3'):
                self.member_search = search_box('Search members', self._search_members)
                self.member_search.mark('member-search')
                if self.is_admin:
                    filters = {choice.value: choice.label for choice in members.MemberFilter}
                    self.member_filter = ui.select(filters, value=members.MemberFilter.EVERYONE.value, label='Show')
                    self.member_filter.props('dense').classes('w-full sm:w-56').mark('member-filter')
                    self.member_filter.on_value_change(self._filter_members)
                # The column headings sort on wide screens; a phone has no headings (each row is a card), so this.
                self.member_sort = ui.select(SORT_LABELS, value='joined', label='Sort by')
                self.member_sort.props('dense').classes('w-full sm:hidden').mark('member-sort')
                self.member_sort.on_value_change(self._sort_members)
            self.locked_area = ui.column().classes('w-full gap-1')
            columns = ADMIN_MEMBER_COLUMNS if self.is_admin else MEMBER_COLUMNS
            self.member_table = PagedTable(columns=columns, shown=_member_texts)
            self.anchor = self.member_table.anchor
            if self.is_admin:
                with self.anchor:
                    HoldButton.load()  # the rows' `Hold to Remove`
            self.member_table.props('no-data-label="Nobody on the team matches the search."')
            self.member_table.classes('w-full cxt-team-table')
            self.member_table.add_slot('body', _row_template(f'cxt-m{self.member_table.id}'))
            self.member_table.mark('member-table')
            self.member_table.on('request', self._member_request)
            self.member_table.on('role', self._role_event)
            self.member_table.on_row('hold_complete', self.remove)
            self.member_table.on_row('hold_short', self.hold_hint)
            self.member_table.on_row('reset_link', self.reset_link)
            self.member_table.on_row('reset_two_factor', self.reset_two_factor)

    def show(
        self,
        page: members.MemberPage,
        *,
        locked: set[str],
        two_factor: frozenset[int],
        last_sign_ins: dict[int, datetime],
    ) -> bool:
        """Show a page of members; True when the shown page went away (its last rows left) and the new last page is
        to be read."""
        self.two_factor_ids, self.last_sign_ins = two_factor, last_sign_ins
        gone = bool(page.total and not page.members and self.query.page > 1)
        if gone:
            self.query = self.query.last_page(page.total)
        rows = [self._member_row(member, locked=member.email in locked) for member in page.members]
        self.member_table.show_page(rows, total=page.total, query=self.query)
        self._show_locked([row for row in rows if row['locked']])
        return gone

    def _member_row(self, member: User, *, locked: bool) -> dict:
        is_self = member.id == self.user.id
        role = Role(member.role)
        manageable = self.is_admin and not is_self
        return {
            'id': member.id,
            'name': member.name,
            'email': member.email,
            'role': role.value,
            'role_label': role.label,
            'status': UserStatus(member.status).label,
            'locked': locked and self.is_admin,
            'is_self': is_self,
            'manageable': manageable,
            'two_factor': manageable and member.id in self.two_factor_ids,
            'admin_view': self.is_admin,
            **self._admin_cells(member.id),
        }

    def _admin_cells(self, member_id: int | None) -> dict:
        """Whether the member has a second factor and when they last signed in: shown to admins only."""
        if not self.is_admin:
            return {'two_factor_label': '', 'last_sign_in': '', 'last_sign_in_exact': ''}
        signed_in_at = self.last_sign_ins.get(member_id) if member_id is not None else None
        return {
            'two_factor_label': TWO_FACTOR_ON if member_id in self.two_factor_ids else TWO_FACTOR_OFF,
            'last_sign_in': format_moment(signed_in_at) if signed_in_at else NEVER,
            'last_sign_in_exact': format_exact(signed_in_at) if signed_in_at else '',
        }

    def _show_locked(self, rows: list[dict]) -> None:
        """Members on this page who cannot sign in after too many wrong passwords, each with `Unlock` (admins)."""
        self.locked_area.clear()
        with self.locked_area:
            for row in rows:
                with ui.row().classes('items-center gap-2'):
                    ui.label(f'{row["email"]} cannot sign in after too many wrong passwords.').classes(
                        'text-body2 text-negative'
                    )
                    ui.button('Unlock', icon='lock_open', on_click=lambda email=row['email']: self.unlock(email)).props(
                        'flat dense no-caps'
                    ).mark(f'unlock-{row["id"]}')

    async def _member_request(self, event: events.GenericEventArguments) -> None:
        self.query = self.query.from_request(event.args)
        # The phone's sort control follows the headings (and the other way round, through the same query).
        query = (self.query.sort_by, self.query.descending)
        choice = next((name for name, chosen in SORT_CHOICES.items() if chosen == query), None)
        if choice is not None and self.member_sort.value != choice:
            self.member_sort.set_value(choice)  # its change handler reloads; the query is already the same
        await self.reload()

    async def _search_members(self, text: str) -> None:
        self.query = replace(self.query, search=text, page=1)
        await self.reload()

    async def _filter_members(self, event: events.ValueChangeEventArguments) -> None:
        self.query = replace(self.query, show=members.MemberFilter(event.value), page=1)
        await self.reload()

    async def _sort_members(self, event: events.ValueChangeEventArguments) -> None:
        sort_by, descending = SORT_CHOICES.get(str(event.value), (None, False))
        self.query = replace(self.query, sort_by=sort_by, descending=descending, page=1)
        await self.reload()

    def _row(self, member_id: int) -> dict | None:
        return next((row for row in self.member_table.rows if row['id'] == member_id), None)

    async def _role_event(self, event: events.GenericEventArguments) -> None:
        args = event.args if isinstance(event.args, dict) else {}
        member_id, role = args.get('id'), args.get('role')
        if isinstance(member_id, int) and isinstance(role, str):
            await self.change_role(member_id, role)

    @anchored
    async def change_role(self, member_id: int, role: str) -> None:
        """The role select changed: nothing happens until the admin confirms what it means; focus stays on the
        select either way."""
        row = self._row(member_id)
        if row is None or row['role'] == role or role not in ROLE_OPTIONS:
            return
        restore = _focus_role_select(member_id, value=row['role'])  # back to the stored role, the focus where it was
        if not await self._confirm_role(row, Role(role)):
            self.client.run_javascript(restore)
            return
        changed = await actions.act(
            lambda db, me: members.change_role(session=db, actor=me, member_id=member_id, role=role),
            recent_password=True,
        )
        if changed is None:
            self.client.run_javascript(restore)
            await self.reload()
            return
        ui.notify(f'{changed.email} is now {Role(changed.role).label.lower()}', type='positive')
        await self.reload()  # the rows drawn anew first, then the focus back on the (new) select
        self.client.run_javascript(_focus_role_select(member_id))

    async def _confirm_role(self, row: dict, role: Role) -> bool:
        name = row['name']
        title = f'Make {name} an admin?' if role == Role.ADMIN else f'Make {name} a member?'
        with theme.dialog_card(title) as dialog:
            ui.label(ROLE_CONSEQUENCES[role].format(name=name)).classes('text-body2').mark('role-consequences')
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat no-caps')
                ui.button(f'Make {role.label.lower()}', on_click=lambda: dialog.submit(True)).props(
                    'no-caps autofocus'
                ).mark('confirm-role')
        return await dialog is True

    @anchored
    async def unlock(self, email: str) -> None:
        done = await actions.act(lambda db, me: auth.unlock(session=db, actor=me.user, email=email, ip=me.ip))
        if done is None:
            return
        ui.notify(f'{email} can sign in again', type='positive')
        await self.reload()

    @anchored
    async def hold_hint(self, member_id: int) -> None:
        """A click or a tap on `Hold to Remove`: say how it works instead of doing nothing."""
        # A notification (announced), not text on the page: changing an element re-renders the table's rows, and
        # the button would lose the keyboard focus the person just put on it.
        row = self._row(member_id)
        name = row['name'] if row else 'this member'
        ui.notify(f'Hold for {HOLD_SECONDS:g} s to remove {name}', type='info')

    @anchored
    async def remove(self, member_id: int) -> None:
        """The hold completed in the browser: check everything again on the server, then end their sessions."""
        member = await actions.act(
            lambda db, me: members.remove_member(session=db, actor=me, member_id=member_id),
            recent_password=True,
        )
        if member is None:
            reset_fill(self.client, f'document.querySelector(\'[data-member-hold="{member_id}"]\')')
            return
        ui.notify(f'{member.email} removed', type='positive')
        focus_after_hold(self.client, f'document.getElementById("c{self.member_search.id}")')

    @anchored
    async def reset_link(self, member_id: int) -> None:
        issued = await actions.act(
            lambda db, me: password_reset.admin_reset_link(session=db, actor=me.user, member_id=member_id, ip=me.ip)
        )
        if issued is None:
            return
        with theme.dialog_card(f'Password reset link for {issued.name}') as dialog:
            ui.label(
                f'Send this link to {issued.email} yourself. It works once, for 1 hour; using it ends their other '
                'sessions.'
            ).classes('text-body2')
            ui.input('Password reset link', value=issued.link).props('readonly').classes('w-full font-mono').mark(
                'reset-link'
            )
            with ui.row().classes('w-full justify-end'):
                ui.button('Close', on_click=dialog.close).props('flat no-caps')
                ui.button('Copy link', icon='content_copy', on_click=lambda: _copy_reset(issued.link)).props(
                    'no-caps'
                ).mark('copy-reset-link')
        dialog.open()

    @anchored
    async def reset_two_factor(self, member_id: int) -> None:
        row = self._row(member_id)
        if row is not None:
            await reset_member_second_factor(member_id, row['name'])


def _copy_reset(link: str) -> None:
    ui.clipboard.write(link)
    ui.notify('Reset link copied to the clipboard', type='positive')


def _focus_role_select(member_id: int, *, value: str | None = None) -> str:
    """JavaScript that puts the focus (and `value`, when given) back on the member's role select at the next frame,
    and again once the confirmation dialog has finished closing if nobody has moved the focus since (Quasar gives it
    back to whatever had it when the dialog opened, which may have been redrawn by then)."""
    set_value = f's.value = "{value}"; ' if value is not None else ''
    select = f'document.querySelector(\'[data-role-for="{member_id}"]\')'
    lost = '!document.activeElement || document.activeElement === document.body'
    return (
        f'const back = () => {{ const s = {select}; if (s) {{ {set_value}s.focus(); }} }}; '
        f'requestAnimationFrame(back); setTimeout(() => ({lost}) && back(), {FOCUS_AFTER_DIALOG_MS});'
    )


def _member_texts(row: dict) -> list:
    texts = [row['name'], row['email'], row['role_label'], row['status']]
    if row['locked']:
        texts.append('locked')
    if row['is_self']:
        texts.append('You')
    if row['manageable']:
        texts.append(MORE_ACTIONS)  # its menu (Copy reset link, Reset two-factor, Hold to Remove) opens on demand
    if row.get('admin_view'):
        texts += [row['two_factor_label'], row['last_sign_in']]
    return texts


# --- Times: the shared format (ui/components/times.py), in the reader's zone ----------------------------------------


def format_exact(moment: datetime) -> str:
    return times.exact(moment, times.reader_zone())


def format_moment(moment: datetime) -> str:
    return times.relative(moment, times.now(), times.reader_zone())
