"""Tab `User Management`: Invite User, Invitations and Team Members (with Hold to Remove).

Both lists are Quasar tables paged on the server (25 rows a page, sorting and a search box): the page holds only the
rows it shows, as plain data, so memory and time stay the same whether the team has ten people or a thousand. The row
templates draw the role selector, `Hold to Remove` and the other row actions in the browser; the actions come back
as table events carrying the row's id, and every service checks them again.
"""

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from nicegui import context, events, ui
from sqlmodel import Session

from models import DeliveryStatus, Organization, Role, User, UserStatus
from services.config import current_settings
from services.db import write_scope
from services.errors import ServiceError
from services.identity import attempts, auth, invitations, password_reset, two_factor
from services.team import members
from ui import actions, open_pages, theme
from ui.components import times
from ui.components.hold_button import HOLD_CLASS, HOLD_SECONDS, focus_after_hold, hold_attributes, reset_fill
from ui.components.two_factor_settings import reset_member_second_factor

PAGE_SIZE = 25
ROLE_OPTIONS = {role.value: role.label for role in (Role.MEMBER, Role.ADMIN)}
# Green-9 rather than Quasar's `positive`: 5:1 against white, where `positive` gives 2.6:1.
STATUS_COLORS = {DeliveryStatus.SENT: 'text-green-9', DeliveryStatus.FAILED: 'text-negative'}
REMOVE = 'Hold to Remove'
FOCUS_AFTER_DIALOG_MS = 400  # longer than a Quasar dialog's closing transition (300 ms)
COPY_RESET_LINK = 'Copy reset link'
RESET_TWO_FACTOR = 'Reset two-factor'
MORE_ACTIONS = 'More actions'
RESENT = 'The earlier link no longer works.'
EXPIRED = 'Expired'
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

# Phones (below Quasar's `sm`, 600 px): each row becomes a card of its own, every value under its label, so nothing
# scrolls sideways and nothing loses its meaning. The labels are real text, shown only there.
_CSS = """
.cxt-team-table .cxt-cell-label { display: none; }
.cxt-team-table tbody td { white-space: normal; }
.cxt-role { font: inherit; padding: 4px 6px; border: 1px solid #757575; border-radius: 4px; background: white;
  min-width: 7rem; }
.cxt-action { font: inherit; font-size: 14px; line-height: 20px; padding: 4px 8px; border: 1px solid transparent;
  border-radius: 4px; background: none; color: var(--q-primary); cursor: pointer; white-space: nowrap; }
.cxt-action:hover { background: rgba(0, 0, 0, .06); }
.cxt-action:focus-visible, .cxt-role:focus-visible, .cxt-sort:focus-visible {
  outline: 2px solid var(--q-primary); outline-offset: 2px; }
.cxt-sort { font: inherit; font-weight: 500; color: inherit; background: none; border: none; padding: 2px 4px;
  margin-left: -4px; border-radius: 4px; cursor: pointer; display: inline-flex; align-items: center; gap: 4px; }
.cxt-sort:hover { background: rgba(0, 0, 0, .06); }
.cxt-sort .cxt-sort-arrow { opacity: 0; font-size: 16px; }
.cxt-sort:hover .cxt-sort-arrow, .cxt-sort:focus-visible .cxt-sort-arrow { opacity: .6; }
.cxt-sort .cxt-sort-arrow.cxt-sorted { opacity: 1; }
.cxt-menu-hold { width: 100%; text-align: left; color: #c10015; }
.cxt-outline { border-color: currentColor; }
.cxt-you { display: inline-block; padding: 1px 8px; border: 1px solid currentColor; border-radius: 4px;
  color: #1f4fd1; font-size: 12px; line-height: 18px; }
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

_PAGINATION = """
<span class="text-body2 q-mr-sm">{{ props.pagination.rowsNumber === 0 ? 0 :
  (props.pagination.page - 1) * props.pagination.rowsPerPage + 1 }}&ndash;{{
  Math.min(props.pagination.page * props.pagination.rowsPerPage, props.pagination.rowsNumber) }}
  of {{ props.pagination.rowsNumber }}</span>
<q-btn flat dense round icon="chevron_left" aria-label="Previous page" :disable="props.isFirstPage"
  @click="props.prevPage" />
<q-btn flat dense round icon="chevron_right" aria-label="Next page" :disable="props.isLastPage"
  @click="props.nextPage" />
"""


# Column headings: each sortable one is a button (a Tab stop; Enter and Space sort), its `th` says how the table is
# sorted (`aria-sort`), and the sorted column always shows its arrow. `col.sorted` is set by the server with the rows.
_HEADER = """
<tr class="q-tr">
  <th v-for="col in props.cols" :key="col.name" scope="col" class="text-left"
    :aria-sort="col.sortable ? (col.sorted || 'none') : undefined">
    <button v-if="col.sortable" type="button" class="cxt-sort" :data-sort="col.name"
      @click="(e) => { e.currentTarget.ownerDocument.defaultView.cxtSortFocus = col.name; props.sort(col); }"
      >{{ col.label }}
      <q-icon aria-hidden="true" :name="col.sorted === 'descending' ? 'arrow_downward' : 'arrow_upward'"
        :class="['cxt-sort-arrow', col.sorted ? 'cxt-sorted' : '']" /></button>
    <span v-else>{{ col.label }}</span>
  </th>
</tr>
"""


# A menu's keys: Up and Down move between its items (wrapping round), as menus do everywhere; Tab and Escape as usual.
# (Vue templates see no `window` or `document`: they are reached through the event.)
_MENU_KEYS = (
    '(e) => { const step = {ArrowDown: 1, ArrowUp: -1}[e.key]; if (!step) return; '
    "const items = [...e.currentTarget.querySelectorAll('[role=menuitem]')]; "
    "const at = items.indexOf(e.currentTarget.ownerDocument.activeElement.closest('[role=menuitem]')); "
    'e.preventDefault(); items[(at + step + items.length) % items.length]?.focus(); }'
)


def _label(text: str) -> str:
    return f'<span class="cxt-cell-label">{text}</span>'


def _member_row_template(prefix: str) -> str:
    # A native select: 25 of them cost next to nothing to draw, and every browser and screen reader knows it.
    options = ''.join(f'<option value="{value}">{label}</option>' for value, label in ROLE_OPTIONS.items())
    name_id = f"'{prefix}-' + props.row.id"
    return f"""
<tr class="q-tr" :key="props.key">
  <td class="q-td text-left">{_label('Name')}<span :id="{name_id}">{{{{ props.row.name }}}}</span></td>
  <td class="q-td text-left break-all">{_label('Email')}<span>{{{{ props.row.email }}}}</span></td>
  <td class="q-td text-left">{_label('Role')}
    <select v-if="props.row.editable" class="cxt-role" :value="props.row.role" :data-role-for="props.row.id"
      :aria-label="'Role for ' + props.row.name"
      @change="(event) => $parent.$emit('role', {{id: props.row.id, role: event.target.value}})">{options}</select>
    <span v-else>{{{{ props.row.role_label }}}}</span>
  </td>
  <td class="q-td text-left">{_label('Status')}<span>{{{{ props.row.status }}}}</span>
    <span v-if="props.row.locked" class="text-negative"> · locked</span></td>
  <td v-if="props.row.admin_view" class="q-td text-left">{_label('Two-factor')}
    <span>{{{{ props.row.two_factor_label }}}}</span></td>
  <td v-if="props.row.admin_view" class="q-td text-left">{_label('Last sign-in')}
    <span :title="props.row.last_sign_in_exact">{{{{ props.row.last_sign_in }}}}</span></td>
  <td class="q-td text-left">
    <span v-if="props.row.is_self" class="cxt-you">You</span>
    <q-btn v-else-if="props.row.manageable" flat round dense icon="more_vert" :data-member-menu="props.row.id"
      aria-label="{MORE_ACTIONS}" :aria-describedby="{name_id}">
      <q-menu anchor="bottom right" self="top right">
        <q-list role="none" style="min-width: 13rem" @keydown="{_MENU_KEYS}">
          <q-item role="menuitem" clickable v-close-popup @click="$parent.$emit('reset_link', props.row.id)">
            <q-item-section>{COPY_RESET_LINK}</q-item-section></q-item>
          <q-item v-if="props.row.two_factor" role="menuitem" clickable v-close-popup
            @click="$parent.$emit('reset_two_factor', props.row.id)">
            <q-item-section>{RESET_TWO_FACTOR}</q-item-section></q-item>
          <q-separator />
          <q-item role="none">
            <button type="button" role="menuitem" class="cxt-action cxt-menu-hold {HOLD_CLASS}" {hold_attributes()}
              :data-member-hold="props.row.id" :aria-describedby="{name_id}"
              @hold_complete="$parent.$emit('hold_complete', props.row.id)"
              @hold_short="$parent.$emit('hold_short', props.row.id)">{REMOVE}</button>
          </q-item>
        </q-list>
      </q-menu>
    </q-btn>
  </td>
</tr>
"""


def _invitation_row_template(prefix: str) -> str:
    email_id = f"'{prefix}-' + props.row.id"
    return f"""
<tr class="q-tr" :key="props.key">
  <td class="q-td text-left break-all">{_label('Email')}
    <span :id="{email_id}">{{{{ props.row.email }}}}</span></td>
  <td class="q-td text-left">{_label('Role')}<span>{{{{ props.row.role_label }}}}</span></td>
  <td class="q-td text-left">{_label('Invited by')}<span>{{{{ props.row.invited_by }}}}</span></td>
  <td class="q-td text-left">{_label('Expires')}<span>{{{{ props.row.expires }}}}</span></td>
  <td class="q-td text-left">{_label('Status')}
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
INVITATION_COLUMNS = [
    {'name': 'email', 'label': 'Email', 'field': 'email', 'sortable': True, 'align': 'left'},
    {'name': 'role', 'label': 'Role', 'field': 'role_label', 'sortable': True, 'align': 'left'},
    {'name': 'invited_by', 'label': 'Invited by', 'field': 'invited_by', 'align': 'left'},
    {'name': 'expires', 'label': 'Expires', 'field': 'expires', 'sortable': True, 'align': 'left'},
    {'name': 'status', 'label': 'Status', 'field': 'status', 'align': 'left'},
    {'name': 'actions', 'label': 'Actions', 'field': 'id', 'align': 'left'},
]


class PagedTable(ui.table):
    """A table whose rows are one page read on the server. What the rows show counts as the table's text, so
    `user.should_see` finds a member's name or a button drawn by the row template."""

    def __init__(self, *, columns: list[dict], sort_by: str | None, descending: bool, shown: Callable[[dict], list]):
        super().__init__(
            rows=[],
            columns=columns,
            row_key='id',
            pagination={
                'rowsPerPage': PAGE_SIZE,
                'page': 1,
                'rowsNumber': 0,
                'sortBy': sort_by,
                'descending': descending,
            },
        )
        self._shown = shown
        self.props(':rows-per-page-options="[25]" flat wrap-cells binary-state-sort').classes('w-full cxt-team-table')
        self.add_slot('pagination', _PAGINATION)
        self.add_slot('header', _HEADER)
        self._mark_sorted(sort_by, descending=descending)

    def _mark_sorted(self, sort_by: str | None, *, descending: bool) -> None:
        """Tell each column heading whether the rows are sorted by it (`aria-sort`, and its arrow)."""
        for column in self._props['columns']:
            if column.get('sortable'):
                sorted_here = column['name'] == sort_by
                column['sorted'] = ('descending' if descending else 'ascending') if sorted_here else None

    def _displayed_contents(self, *, only_visible: bool) -> list:
        return [
            *super()._displayed_contents(only_visible=only_visible),
            *(text for row in self.rows for text in self._shown(row)),
        ]

    def show_page(self, rows: list[dict], *, total: int, query: 'PageQuery') -> None:
        """Show `rows` as page `query.page` of `total`; nothing is sent when nothing changed."""
        pagination = {
            'rowsPerPage': PAGE_SIZE,
            'page': query.page,
            'rowsNumber': total,
            'sortBy': query.sort_by,
            'descending': query.descending,
        }
        if rows == self.rows and pagination == self.pagination:
            return
        self._props['rows'] = rows
        self._props['pagination'] = pagination
        self._mark_sorted(query.sort_by, descending=query.descending)
        self.update()
        # The headings are drawn anew with the rows: the heading that was pressed keeps the keyboard focus.
        self.client.run_javascript(
            f'requestAnimationFrame(() => {{ const name = window.cxtSortFocus; delete window.cxtSortFocus; '
            f'if (name) getHtmlElement({self.id})?.querySelector(`[data-sort="${{name}}"]`)?.focus(); }})'
        )


@dataclass(frozen=True)
class PageQuery:
    page: int = 1
    sort_by: str | None = None
    descending: bool = False
    search: str = ''
    show: members.MemberFilter = members.MemberFilter.EVERYONE

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def from_request(self, args: Any) -> 'PageQuery':
        pagination = args.get('pagination', {}) if isinstance(args, dict) else {}
        page = pagination.get('page')
        return replace(
            self,
            page=page if isinstance(page, int) and page >= 1 else 1,
            sort_by=pagination.get('sortBy') if isinstance(pagination.get('sortBy'), str) else None,
            descending=bool(pagination.get('descending')),
        )


@dataclass(frozen=True)
class TeamPage:
    """What the tab shows, read in one transaction."""

    viewer: User | None  # the page's own user as stored now (None once removed)
    members: members.MemberPage
    invitations: invitations.InvitationPage | None
    locked: set[str]  # members on this page who cannot sign in right now after too many wrong passwords (admins)
    two_factor: frozenset[int] = frozenset()  # members on this page with a second factor an admin can reset
    last_sign_ins: dict[int, datetime] = field(default_factory=dict)  # members on this page (admins)


def _read(db: Session, user: User, member_query: PageQuery, invitation_query: PageQuery | None) -> TeamPage:
    viewer = db.get(User, user.id)
    if viewer is None or viewer.status != UserStatus.ACTIVE:
        return TeamPage(viewer=None, members=members.MemberPage([], 0), invitations=None, locked=set())
    is_admin = viewer.role == Role.ADMIN
    team = members.page_members(
        session=db,
        actor=viewer,
        search=member_query.search,
        sort_by=member_query.sort_by,
        descending=member_query.descending,
        offset=member_query.offset,
        limit=PAGE_SIZE,
        show=member_query.show if is_admin else members.MemberFilter.EVERYONE,
    )
    pending = None
    if is_admin and invitation_query is not None:
        pending = invitations.page_pending(
            session=db,
            actor=viewer,
            search=invitation_query.search,
            sort_by=invitation_query.sort_by,
            descending=invitation_query.descending if invitation_query.sort_by else None,
            offset=invitation_query.offset,
            limit=PAGE_SIZE,
        )
    emails = [member.email for member in team.members]
    locked = attempts.locked_emails(session=db, emails=emails) if is_admin else set()
    ids = [member.id for member in team.members if member.id is not None]
    with_second_factor = frozenset(two_factor.with_second_factor(session=db, actor=viewer, user_ids=ids))
    signed_in_at = members.last_sign_ins(session=db, actor=viewer, user_ids=ids) if is_admin else {}
    return TeamPage(
        viewer=viewer,
        members=team,
        invitations=pending,
        locked=locked,
        two_factor=with_second_factor,
        last_sign_ins=signed_in_at,
    )


async def build(*, user: User, tab: ui.tab | None = None, tabs: ui.tabs | None = None) -> 'TeamTab':
    """Build the tab (call it when the tab is first opened). With `tabs`, live updates reach it only while it is
    shown; a change made while it is hidden is read when it is shown again."""
    first = PageQuery()
    team = await actions.read(lambda db: _read(db, user, first, first if user.role == Role.ADMIN else None))
    view = TeamTab(user=user, tab=tab, tabs=tabs)  # built with its rows: one message to the browser, not two
    await view.apply(team, generation=view.generation)
    return view


def _anchored(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Run a handler inside the tab's anchor, so its notifications and dialogs outlive whatever row it came from."""

    @functools.wraps(handler)
    async def run_anchored(self: 'TeamTab', *args: Any, **kwargs: Any) -> None:
        with self.anchor:
            await handler(self, *args, **kwargs)

    return run_anchored


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


class TeamTab:
    def __init__(self, *, user: User, tab: ui.tab | None = None, tabs: ui.tabs | None = None) -> None:
        self.user = user
        self.organization_id = user.organization_id
        self.is_admin = user.role == Role.ADMIN
        self.client = context.client
        self.tab, self.tabs = tab, tabs
        self.stale = False
        self.generation = 0
        self.member_query = PageQuery()
        self.invitation_query = PageQuery()
        self.two_factor_ids: frozenset[int] = frozenset()
        self.last_sign_ins: dict[int, datetime] = {}
        self.anchor = ui.element('div').classes('hidden')
        if self.is_admin:
            self._invite_card()
            self._invitations_card()
        self._members_card()
        open_pages.show_team(self)
        if tabs is not None:
            tabs.on_value_change(self._on_tab_change)

    # --- loading -----------------------------------------------------------------------------------------------

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
        member_query, invitation_query = self.member_query, self.invitation_query if self.is_admin else None
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
        self.two_factor_ids = team.two_factor
        self.last_sign_ins = team.last_sign_ins
        self._show_members(team.members, team.locked)
        if team.invitations is not None:
            self._show_invitations(team.invitations)
        if self.stale and self.shown and not again:
            await self.reload(again=True)  # the shown page went away (its last rows left): show the new last page

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
        with ui.dialog() as dialog, ui.card().classes('w-full max-w-lg'):
            title = theme.heading(
                f'Invitation renewed for {email}' if resent else f'Invitation created for {email}', level=2
            )
            if resent:
                ui.label(RESENT).classes('text-body2 text-weight-medium').mark('earlier-link-dead')
            ui.label(
                'No mail server is configured. Send this link to them yourself; it works once, for 7 days.'
            ).classes('text-body2')
            ui.input('Invitation link', value=link).props('readonly').classes('w-full font-mono').mark('invite-link')
            with ui.row().classes('w-full justify-end'):
                ui.button('Close', on_click=dialog.close).props('flat no-caps')
                ui.button('Copy link', icon='content_copy', on_click=lambda: self._copy(link)).props('no-caps')
        dialog.props(f'aria-labelledby=c{title.id}')
        dialog.on('hide', dialog.delete)
        dialog.open()

    # --- Invitations -------------------------------------------------------------------------------------------

    def _invitations_card(self) -> None:
        with ui.card().classes('w-full'):
            theme.heading('Invitations', level=2)
            self.no_invitations = ui.label('No pending invitations.').classes('text-body2 text-grey-8')
            self.no_invitations.mark('no-invitations')
            self.invitation_search = search_box('Search invitations', self._search_invitations)
            self.invitation_search.mark('invitation-search')
            self.invitation_table = PagedTable(
                columns=INVITATION_COLUMNS, sort_by=None, descending=False, shown=_invitation_texts
            )
            self.invitation_table.props('no-data-label="No invitation matches the search."')
            self.invitation_table.add_slot('body', _invitation_row_template(f'cxt-i{self.anchor.id}'))
            self.invitation_table.mark('invitation-table')
            self.invitation_table.on('request', self._invitation_request)
            self.invitation_table.on('copy_link', lambda e: self.copy_link(_event_id(e)))
            self.invitation_table.on('resend', lambda e: self.resend(_event_id(e)))
            self.invitation_table.on('revoke', lambda e: self.revoke(_event_id(e)))

    def _show_invitations(self, page: invitations.InvitationPage) -> None:
        query = self.invitation_query
        if page.total and not page.invitations and query.page > 1:  # the last row of the last page went away
            self.invitation_query = replace(query, page=(page.total - 1) // PAGE_SIZE + 1)
            self.stale = True
        empty = page.total == 0 and not query.search
        self.no_invitations.set_visibility(empty)
        self.invitation_search.set_visibility(not empty)
        self.invitation_table.set_visibility(not empty)
        self.invitation_table.show_page(
            [_invitation_row(row) for row in page.invitations], total=page.total, query=self.invitation_query
        )

    async def _invitation_request(self, event: events.GenericEventArguments) -> None:
        self.invitation_query = self.invitation_query.from_request(event.args)
        await self.reload()

    async def _search_invitations(self, text: str) -> None:
        self.invitation_query = replace(self.invitation_query, search=text, page=1)
        await self.reload()

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
        self.invitation_search.run_method('focus')

    @_anchored
    async def revoke(self, invitation_id: int) -> None:
        invitation = await actions.act(
            lambda db, me: invitations.revoke_invitation(
                session=db, actor=me.user, invitation_id=invitation_id, ip=me.ip
            )
        )
        if invitation is not None:
            ui.notify(f'Invitation for {invitation.email} revoked', type='positive')
            self.invitation_search.run_method('focus')

    # --- Team Members ------------------------------------------------------------------------------------------

    def _members_card(self) -> None:
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
            self.member_table = PagedTable(columns=columns, sort_by=None, descending=False, shown=_member_texts)
            self.member_table.props('no-data-label="Nobody on the team matches the search."')
            self.member_table.add_slot('body', _member_row_template(f'cxt-m{self.anchor.id}'))
            self.member_table.mark('member-table')
            self.member_table.on('request', self._member_request)
            self.member_table.on('role', self._role_event)
            self.member_table.on('hold_complete', lambda e: self.remove(_event_id(e)))
            self.member_table.on('hold_short', lambda e: self.hold_hint(_event_id(e)))
            self.member_table.on('reset_link', lambda e: self.reset_link(_event_id(e)))
            self.member_table.on('reset_two_factor', lambda e: self.reset_two_factor(_event_id(e)))

    def _show_members(self, page: members.MemberPage, locked: set[str]) -> None:
        query = self.member_query
        if page.total and not page.members and query.page > 1:
            self.member_query = replace(query, page=(page.total - 1) // PAGE_SIZE + 1)
            self.stale = True
        rows = [self._member_row(member, locked=member.email in locked) for member in page.members]
        self.member_table.show_page(rows, total=page.total, query=self.member_query)
        self._show_locked([row for row in rows if row['locked']])

    def _member_row(self, member: User, *, locked: bool) -> dict:
        is_self = member.id == self.user.id
        role = Role(member.role)
        has_second_factor = member.id in self.two_factor_ids
        signed_in_at = self.last_sign_ins.get(member.id) if member.id is not None else None
        return {
            'id': member.id,
            'name': member.name,
            'email': member.email,
            'role': role.value,
            'role_label': role.label,
            'status': UserStatus(member.status).label,
            'locked': locked and self.is_admin,
            'is_self': is_self,
            'editable': self.is_admin and not is_self,
            'manageable': self.is_admin and not is_self,
            'two_factor': self.is_admin and not is_self and has_second_factor,
            'admin_view': self.is_admin,
            'two_factor_label': (TWO_FACTOR_ON if has_second_factor else TWO_FACTOR_OFF) if self.is_admin else '',
            'last_sign_in': format_moment(signed_in_at) if signed_in_at else NEVER if self.is_admin else '',
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
        self.member_query = self.member_query.from_request(event.args)
        # The phone's sort control follows the headings (and the other way round, through the same query).
        query = (self.member_query.sort_by, self.member_query.descending)
        choice = next((name for name, chosen in SORT_CHOICES.items() if chosen == query), None)
        if choice is not None and self.member_sort.value != choice:
            self.member_sort.set_value(choice)  # its change handler reloads; the query is already the same
        await self.reload()

    async def _search_members(self, text: str) -> None:
        self.member_query = replace(self.member_query, search=text, page=1)
        await self.reload()

    async def _filter_members(self, event: events.ValueChangeEventArguments) -> None:
        self.member_query = replace(self.member_query, show=members.MemberFilter(event.value), page=1)
        await self.reload()

    async def _sort_members(self, event: events.ValueChangeEventArguments) -> None:
        sort_by, descending = SORT_CHOICES.get(str(event.value), (None, False))
        self.member_query = replace(self.member_query, sort_by=sort_by, descending=descending, page=1)
        await self.reload()

    def _row(self, member_id: int) -> dict | None:
        return next((row for row in self.member_table.rows if row['id'] == member_id), None)

    async def _role_event(self, event: events.GenericEventArguments) -> None:
        args = event.args if isinstance(event.args, dict) else {}
        member_id, role = args.get('id'), args.get('role')
        if isinstance(member_id, int) and isinstance(role, str):
            await self.change_role(member_id, role)

    @_anchored
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

    @_anchored
    async def unlock(self, email: str) -> None:
        done = await actions.act(lambda db, me: auth.unlock(session=db, actor=me.user, email=email, ip=me.ip))
        if done is None:
            return
        ui.notify(f'{email} can sign in again', type='positive')
        await self.reload()

    @_anchored
    async def hold_hint(self, member_id: int) -> None:
        """A click or a tap on `Hold to Remove`: say how it works instead of doing nothing."""
        # A notification (announced), not text on the page: changing an element re-renders the table's rows, and
        # the button would lose the keyboard focus the person just put on it.
        row = self._row(member_id)
        name = row['name'] if row else 'this member'
        ui.notify(f'Hold for {HOLD_SECONDS:g} s to remove {name}', type='info')

    @_anchored
    async def remove(self, member_id: int) -> None:
        """The hold completed in the browser: check everything again on the server, then end their sessions."""
        removed = await actions.act(
            lambda db, me: _remove(db, me, member_id),
            recent_password=True,
        )
        if removed is None:
            reset_fill(self.client, f'document.querySelector(\'[data-member-hold="{member_id}"]\')')
            return
        member, _organization = removed
        ui.notify(f'{member.email} removed', type='positive')
        focus_after_hold(self.client, f'document.getElementById("c{self.member_search.id}")')

    @_anchored
    async def reset_link(self, member_id: int) -> None:
        issued = await actions.act(
            lambda db, me: password_reset.admin_reset_link(session=db, actor=me.user, member_id=member_id, ip=me.ip)
        )
        if issued is None:
            return
        with ui.dialog() as dialog, ui.card().classes('w-full max-w-lg'):
            title = theme.heading(f'Password reset link for {issued.name}', level=2)
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
        dialog.props(f'aria-labelledby=c{title.id}')
        dialog.on('hide', dialog.delete)
        dialog.open()

    @_anchored
    async def reset_two_factor(self, member_id: int) -> None:
        row = self._row(member_id)
        if row is not None:
            await reset_member_second_factor(member_id, row['name'])


def _remove(db: Session, me: actions.Actor, member_id: int) -> tuple[User, str]:
    member = members.remove_member(
        session=db, actor=me.user, member_id=member_id, ip=me.ip, password_confirmed_at=me.password_confirmed_at
    )
    organization = db.get(Organization, me.user.organization_id)
    return member, organization.name if organization else ''


def _copy_reset(link: str) -> None:
    ui.clipboard.write(link)
    ui.notify('Reset link copied to the clipboard', type='positive')


def search_box(label: str, on_search: Callable[[str], Awaitable[None]]) -> ui.input:
    async def changed(event: events.ValueChangeEventArguments) -> None:
        await on_search(str(event.value or ''))

    box = ui.input(label, on_change=changed).props('dense clearable debounce=300 type=search maxlength=200')
    return box.classes('w-full sm:w-72')


def _event_id(event: events.GenericEventArguments) -> int:
    value = event.args
    if isinstance(value, list) and value:
        value = value[0]
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else -1


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


def _invitation_texts(row: dict) -> list:
    texts = [row['email'], row['role_label'], row['invited_by'], row['expires'], row['status'], row['error'] or '']
    return [*texts, 'Resend'] if row['expired'] else [*texts, 'Copy link', 'Resend', 'Revoke']


def _invitation_row(row: invitations.PendingInvitation) -> dict:
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


# --- Times: the shared format (ui/components/times.py), in the reader's zone ----------------------------------------


def format_exact(moment: datetime) -> str:
    return times.exact(moment, times.reader_zone())


def format_moment(moment: datetime) -> str:
    return times.relative(moment, times.now(), times.reader_zone())


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
