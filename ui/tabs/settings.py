"""Tab `Dashboard Settings`: Step 1 (the API key, billing) and Step 2 (Kustomer subdomains)."""

import functools
from datetime import datetime, timedelta

from nicegui import context, ui
from sqlmodel import Session

from models import ApiKey, Organization, Role, SubscriptionStatus, User
from models.base import utcnow
from services import billing
from services.acting import SCOPES
from services.config import current_settings
from services.errors import NotFound, ServiceError
from services.keys import api_keys, key_traffic
from services.keys.api_keys import GRACE_CHOICES, KeyOverview
from services.team import organizations
from ui import actions, open_pages, theme
from ui.components import times
from ui.components.radio_keys import arrow_keys
from ui.components.secret_field import SecretField
from ui.sections.key_traffic_chart import KeyTrafficChart, old_key_requests, requests_text

ADMIN_KEY_INTRO = 'All CX Toolbox widgets share this one key. Paste it into your Kustomer app settings.'
MEMBER_KEY_INTRO = 'All CX Toolbox widgets share this one key; an admin pastes it into your Kustomer app settings.'
MEMBER_KEY_NOTE = 'Ask an admin to rotate or reveal the key.'
ADMIN_SUBDOMAINS_INTRO = (
    'Enter the part before .kustomerapp.com (letters, digits and hyphens), e.g. yourcompany for '
    'yourcompany.kustomerapp.com, or paste the whole address.'
)
MEMBER_SUBDOMAINS_INTRO = 'The Kustomer addresses your CX Toolbox widgets work with. Ask an admin to change them.'
SUBDOMAIN_LABELS = {
    'subdomain': 'Kustomer Organization Sub Domain',
    'sandbox_subdomain': 'Kustomer Sandbox Organization Sub Domain',
}
ROTATE_WARNING = (
    'Rotating issues a new key. Every integration using the old key — Kustomer app settings and every '
    'CX Toolbox widget — stops working until you replace it with the new key everywhere it is stored.'
)
API_PATH = '/api/v1/organization'


def grace_warning(choice: str, now: datetime) -> str:
    """What the chosen grace window means, said in the rotate dialog before anything happens."""
    grace = GRACE_CHOICES.get(choice, timedelta(0))
    if not grace:
        return (
            'The old key stops working the moment you rotate: every integration using it fails until it has the new '
            'key.'
        )
    return (
        f'The old key keeps working until {_format_time(now + grace)} ({choice.lower()}), then stops: replace it '
        'everywhere before then. You can revoke it sooner from this card.'
    )


async def build(*, user: User, organization: Organization, billing_return: str | None = None) -> None:
    overview = await actions.read(lambda db: api_keys.get_overview(session=db, actor=user))
    card = KeyCard(user=user, organization=organization, overview=overview)
    if billing_return is not None:
        card.show_billing_return(billing_return)
    SubdomainsCard(user=user, organization=organization)
    card.chart = await KeyTrafficChart.create(user=user)  # admins only; redrawn with the card on every key event


class KeyCard:
    """Card `Step 1: Generate API Key`."""

    def __init__(self, *, user: User, organization: Organization, overview: KeyOverview) -> None:
        self.user = user
        self.organization = organization
        self.organization_id = user.organization_id
        self.client = context.client
        self.is_admin = user.role == Role.ADMIN
        self.chart: KeyTrafficChart | None = None
        with ui.card().classes('w-full') as self.card:
            # Focusable from code only: where focus goes once the element a person was on has gone.
            self.heading = theme.heading('Step 1: Generate API Key', level=2).props('tabindex=-1')
            intro = ADMIN_KEY_INTRO if self.is_admin else MEMBER_KEY_INTRO
            ui.label(intro).classes('text-sm text-grey-8')
            self.content(overview)
        open_pages.show_keys(self)

    @ui.refreshable_method
    def content(self, overview: KeyOverview, reveal: str | None = None) -> None:
        """The key, its buttons and notices. A plaintext key is shown by this one render only (`reveal`)."""
        self.field: SecretField | None = None
        self.showing_key = False
        self.notices: list[ui.element] = []
        if overview.active is None:
            no_key = 'Your organization has no API key yet.'
            ui.label(no_key if self.is_admin else f'{no_key} Ask an admin to generate one.').classes('text-body2')
        else:
            self._key_field(overview)
        if self.is_admin:
            self._admin_buttons()
        elif overview.active is not None:
            ui.label(MEMBER_KEY_NOTE).classes('text-body2').mark('member-key-note')
        self.subscription()
        for old in overview.in_grace:
            self.notices.append(self._grace_notice(old))
        if overview.active is not None:
            self._example_request()
        if reveal and self.field is not None:
            self.field.reveal(reveal, stays=True)

    def _key_field(self, overview: KeyOverview) -> None:
        """The key (masked), its `Copy` for admins, and its dates."""
        assert overview.active is not None
        with ui.element('div').classes('relative w-full'):  # the field, and its `Copy` drawn inside it
            self.field = SecretField(
                'API Key',
                masked=overview.masked,
                on_visibility_change=self._show_revealed,
                on_copy=self.copy if self.is_admin else None,
            )
        # `autogrow` makes it a text area: on a phone the revealed key wraps instead of being cut off.
        self.field.props('autogrow input-style="word-break: break-all; padding-right: 5rem"').classes('w-full')
        self.field.mark('api-key')
        self._key_dates(overview.active)

    def _admin_buttons(self) -> None:
        with ui.row().classes('gap-2 flex-wrap'):
            # The key's own actions first: billing is a separate matter (and often not set up at all).
            if self.field is None:
                self.generate_button = ui.button('Generate API Key', icon='add', on_click=self.generate)
                self.generate_button.props('no-caps')
            else:
                ui.button('Rotate API Key', icon='autorenew', on_click=self.rotate).props('outline no-caps')
                self.reveal_button = ui.button('Reveal API Key', icon='visibility', on_click=self.reveal)
                self.reveal_button.props('no-caps')
                self.hide_button = ui.button('Hide API Key', icon='visibility_off', on_click=self.hide)
                self.hide_button.props('outline no-caps')
                self._show_revealed(False)
            self.billing_button = ui.button('Manage Billing', icon='credit_card', on_click=self.open_billing)
            self.billing_button.props('outline no-caps' if billing.is_configured() else 'flat no-caps')

    def _example_request(self) -> None:
        """Where the widgets call and how, as a line to paste into a terminal (Unkey shows one after creating a key)."""
        address = f'{current_settings().resolved_public_url}{API_PATH}'
        command = f'curl -H "Authorization: Bearer $CXT_API_KEY" {address}'
        with ui.expansion('Example request', icon='terminal').classes('w-full').props('dense') as example:
            example.mark('example-request')
            ui.label(f'API address: {address}').classes('text-body2 break-all').mark('api-address')
            with ui.row().classes('w-full items-center no-wrap gap-2'):
                ui.code(command, language='bash').classes('flex-1 min-w-0 text-sm').mark('curl-example')
            ui.label(
                'Set CXT_API_KEY to the key first. The answer names your organization and its Kustomer subdomains.'
            ).classes('text-sm text-grey-8')

    def _key_dates(self, key: ApiKey) -> None:
        with ui.row().classes('gap-x-4 gap-y-0 text-body2 text-grey-8'):
            times.time_text(key.created_at, prefix='Created ').mark('key-created')
            if key.last_used_at:
                times.time_text(key.last_used_at, prefix='Last used ').mark('key-last-used')
            else:
                ui.label('Never used').mark('key-last-used')

    def _grace_notice(self, old: ApiKey) -> ui.element:
        """One old key still inside its grace window: until when, when it was last used, and (admins) its own
        `Revoke old key now`. Returns the notice, which focus can be sent to."""
        with ui.row().classes('w-full items-center gap-2 bg-amber-1 rounded-borders q-pa-sm') as notice:
            notice.props('role=note tabindex=-1').mark(f'grace-notice-{old.id}')
            ui.icon('schedule', color='warning')
            used = _format_time(old.last_used_at) if old.last_used_at else 'never'
            with ui.column().classes('flex-1 min-w-0 gap-0'):
                ui.label(
                    f'The previous key {api_keys.mask(old.last4)} keeps working until {_format_time(old.expires_at)}. '
                    f'Last used: {used}.'
                ).classes('text-body2 break-words')
                if old.id is not None:
                    old_key_requests(user=self.user, key_id=old.id)  # admins: `Old key: N requests in the last hour`
            if self.is_admin:
                assert old.id is not None
                ui.button('Revoke old key now', on_click=functools.partial(self.revoke_old, old.id)).props(
                    'outline dense no-caps color=negative'
                ).mark(f'revoke-old-{old.id}')
        return notice

    def _show_revealed(self, revealed: bool) -> None:
        if not self.is_admin or self.field is None:
            return
        was_revealed, self.showing_key = self.showing_key, revealed
        self.reveal_button.set_visibility(not revealed)
        self.hide_button.set_visibility(revealed)
        if was_revealed and not revealed:
            # Masked again by the timer: a person who was on `Hide API Key` or `Copy` stays on the card.
            copy = self.field.copy_button
            leaving = f'[getHtmlElement({self.hide_button.id})' + (f', getHtmlElement({copy.id})]' if copy else ']')
            _focus(self.reveal_button, when=f'{leaving}.includes(document.activeElement)')

    def hide(self) -> None:
        if self.field is not None:
            self.field.hide()
        _focus(self.reveal_button)

    async def reload(self) -> None:
        """Load the key again (after it changed in another process)."""
        await self._reload()

    async def _reload(self, reveal: str | None = None) -> None:
        overview = await actions.read(lambda db: api_keys.get_overview(session=db, actor=self.user))
        await self.content.refresh(overview, reveal)  # awaited: what follows (focus, a notice) meets the new card
        if self.chart is not None:  # the same key event: the chart's `Current key` is the new one at once
            await self.chart.reload()

    async def generate(self) -> None:
        plaintext = await actions.act(
            lambda db, me: api_keys.generate_key(session=db, actor=me.user, ip=me.ip), button=self.generate_button
        )
        if plaintext is None:
            return
        open_pages.own_change_shown(self)
        await self._reload(reveal=plaintext)
        with self.card:  # the button that was clicked has gone with the old card content
            ui.notify('API key generated. Copy it into your Kustomer app settings.', type='positive')

    async def reveal(self) -> None:
        plaintext = await actions.act(
            lambda db, me: api_keys.reveal_key(session=db, actor=me),
            button=self.reveal_button,
            recent_password=True,
            purpose='reveal the API key',
        )
        if plaintext is not None and self.field is not None:
            self.field.reveal(plaintext)

    async def copy(self) -> None:
        if self.field is not None and self.field.revealed:
            ui.clipboard.write(self.field.value or '')
            ui.notify('API key copied to the clipboard', type='positive')

    async def rotate(self) -> None:
        if not await actions.confirm_recent_password('rotate the API key'):
            return
        opened_at = utcnow()
        with theme.dialog_card('Rotate API Key?') as dialog:
            ui.label(ROTATE_WARNING).classes('text-body2')
            question = ui.label('When should the old key stop working?').classes('text-body2 q-mt-sm')
            choice = arrow_keys(ui.radio(list(GRACE_CHOICES), value='Immediately').mark('grace'))
            choice.props(f'aria-labelledby={question.html_id}')
            # Said again for each choice, with the moment the old key ends.
            warning = ui.label(grace_warning('Immediately', opened_at)).classes('text-body2 text-weight-medium')
            warning.props('aria-live=polite').mark('grace-warning')
            choice.on_value_change(lambda event: warning.set_text(grace_warning(str(event.value), utcnow())))
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat no-caps')
                ui.button('Rotate', on_click=lambda: dialog.submit(choice.value)).props('no-caps color=negative').mark(
                    'confirm-rotate'
                )
        picked = await dialog
        if picked is None:
            return
        plaintext = await actions.act(
            lambda db, me: api_keys.rotate_key(session=db, actor=me, grace=GRACE_CHOICES[picked]),
            recent_password=True,
            purpose='rotate the API key',
        )
        if plaintext is None:
            return
        open_pages.own_change_shown(self)
        await self._reload(reveal=plaintext)
        with self.card:
            ui.notify('API key rotated. Replace the old key everywhere it is stored.', type='positive')

    async def revoke_old(self, key_id: int) -> None:
        """`Revoke old key now`: the password when its last entry is old, then a confirmation that says what the key
        is still doing (its last hour's requests), then the revocation."""
        if not await actions.confirm_recent_password('revoke the old key'):
            return
        try:
            old, count = await actions.read(lambda db: _old_key_and_traffic(db, self.user, key_id))
        except ServiceError as error:
            ui.notify(str(error), type='negative')
            return
        with theme.dialog_card('Revoke the old key now?') as dialog:
            ui.label(
                f'The old key {api_keys.mask(old.last4)} stops working at once, instead of at '
                f'{_format_time(old.expires_at)}. Every integration still using it fails until it has the new key.'
            ).classes('text-body2')
            ui.label(requests_text(count)).classes('text-body2 text-weight-medium').mark('revoke-traffic')
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat no-caps autofocus')
                ui.button('Revoke', on_click=lambda: dialog.submit(True)).props('no-caps color=negative').mark(
                    'confirm-revoke'
                )
        if await dialog is not True:
            return
        revoked = await actions.act(
            lambda db, me: api_keys.revoke_old_key(session=db, actor=me, key_id=key_id),
            recent_password=True,
            purpose='revoke the old key',
        )
        open_pages.own_change_shown(self)
        await self._reload()
        with self.card:  # the notice and its button are gone with the old card content
            # Focus goes to the next old key's notice, or to the card's heading.
            _focus(self.notices[0] if self.notices else self.heading)
            if revoked is not None:
                ui.notify(f'The old key {api_keys.mask(revoked.last4)} no longer works', type='positive')

    @ui.refreshable_method
    def subscription(self) -> None:
        organization = self.organization
        with ui.row().classes('items-center gap-x-4 gap-y-0'):
            ui.label(f'Subscription: {organization.subscription_status}').classes('text-body2').mark('subscription')
            renewal = _renewal_text(organization)
            if renewal:
                ui.label(renewal).classes('text-body2 text-grey-8').mark('subscription-renewal')

    async def open_billing(self) -> None:
        if not billing.is_configured():
            ui.notify(billing.NOT_CONFIGURED, type='warning')
            return
        redirect = await actions.act_stepwise(
            lambda me: billing.start_billing(scopes=SCOPES, actor=me),
            button=self.billing_button,
            recent_password=True,
            purpose='open billing',
        )
        if redirect is not None:
            ui.navigate.to(redirect.url)

    def show_billing_return(self, outcome: str) -> None:
        """Back from Stripe Checkout (`/?billing=success|cancelled`): say whether it went through."""
        ui.navigate.history.replace('/')  # said once: reloading the page must not say it again
        if outcome == 'success':
            ui.notify('Checkout complete: your subscription is set up.', type='positive')
            if self.organization.subscription_status in billing.ENDED_STATUSES:
                # Stripe's webhook may land a moment after the browser: show the status once it does.
                self._watch = ui.timer(2.0, self._reload_subscription, immediate=False)
                ui.timer(60.0, self._watch.cancel, once=True)
        elif outcome == 'cancelled':
            ui.notify('Checkout cancelled: no subscription was started.', type='info')

    async def _reload_subscription(self) -> None:
        organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=self.user))
        if organization.subscription_status != self.organization.subscription_status:
            self.organization = organization
            await self.subscription.refresh()
            self._watch.cancel()


class SubdomainsCard:
    """Card `Step 2: Configure Kustomer Subdomains`: a form for admins, the saved addresses for members."""

    def __init__(self, *, user: User, organization: Organization) -> None:
        self.user = user
        self.organization_id = user.organization_id
        self.client = context.client
        self.is_admin = user.role == Role.ADMIN
        self.fields: dict[str, ui.input] = {}
        self.saved = _saved_subdomains(organization)
        with ui.card().classes('w-full'):
            theme.heading('Step 2: Configure Kustomer Subdomains', level=2)
            if self.is_admin:
                ui.label(ADMIN_SUBDOMAINS_INTRO).classes('text-sm text-grey-8')
                self._form()
            else:
                ui.label(MEMBER_SUBDOMAINS_INTRO).classes('text-sm text-grey-8')
                self.saved_addresses()
        open_pages.show_subdomains(self)

    def _form(self) -> None:
        # The field is as wide as what is typed, so `.kustomerapp.com` sits right after it (Quasar puts a suffix at
        # the far end of the field, ~800 px from a short value on a wide screen).
        sized = 'input-style="field-sizing: content; width: auto; flex: 0 1 auto; min-width: 3ch; max-width: 100%"'
        suffix = f'suffix={organizations.KUSTOMER_SUFFIX} stack-label outlined {sized}'
        for name, label in SUBDOMAIN_LABELS.items():
            field = ui.input(label, value=self.saved[name]).classes('w-full').mark(name.replace('_', '-'))
            field.props(f'{suffix} maxlength=253' + (' hint=Optional' if name == 'sandbox_subdomain' else ''))
            field.on('keydown.enter', self.save)
            self.fields[name] = field
        self.save_button = ui.button('Save', icon='save', on_click=self.save).props('no-caps')

    @ui.refreshable_method
    def saved_addresses(self) -> None:
        """What a member reads: the addresses themselves, not a form they cannot send."""
        with ui.element('dl').classes('q-my-none'):
            for name, label in SUBDOMAIN_LABELS.items():
                with ui.element('div').classes('q-mb-sm'):
                    with ui.element('dt'):
                        ui.label(label).classes('text-caption text-grey-8')
                    with ui.element('dd').classes('q-ml-none'):
                        value = self.saved[name]
                        shown = f'{value}{organizations.KUSTOMER_SUFFIX}' if value else 'Not set'
                        ui.label(shown).classes('text-body1').mark(f'{name.replace("_", "-")}-value')

    async def reload(self) -> None:
        """Show the subdomains as saved now (saved on another page or in another process)."""
        organization = await actions.read(lambda db: organizations.get_organization(session=db, actor=self.user))
        await self.show(organization)

    async def show(self, organization: Organization, *, keep_typing: bool = True) -> None:
        saved = _saved_subdomains(organization)
        for name, field in self.fields.items():
            if not keep_typing or field.value == self.saved[name]:  # what a person types stays until they save
                field.value = saved[name]
        self.saved = saved
        if not self.is_admin:
            await self.saved_addresses.refresh()

    async def save(self) -> None:
        subdomain, sandbox = self.fields['subdomain'].value, self.fields['sandbox_subdomain'].value
        organization = await actions.act(
            lambda db, me: organizations.update_subdomains(
                session=db, actor=me.user, subdomain=subdomain, sandbox_subdomain=sandbox, ip=me.ip
            ),
            button=self.save_button,
            fields=self.fields,
        )
        if organization is None:
            return
        await self.show(organization, keep_typing=False)  # as saved: `ACME.kustomerapp.com` becomes `acme`
        ui.notify('Subdomains saved', type='positive')


def _old_key_and_traffic(db: Session, user: User, key_id: int) -> tuple[ApiKey, int]:
    """An old key in its grace window and its requests in the last hour, for the revoke confirmation."""
    old = next((key for key in api_keys.get_overview(session=db, actor=user).in_grace if key.id == key_id), None)
    if old is None:
        raise NotFound('That old key has already stopped working.')
    return old, key_traffic.requests_last_hour(session=db, actor=user, key_id=key_id)


def _saved_subdomains(organization: Organization) -> dict[str, str]:
    return {
        'subdomain': organization.kustomer_subdomain or '',
        'sandbox_subdomain': organization.kustomer_sandbox_subdomain or '',
    }


def _focus(element: ui.element, *, when: str = 'true') -> None:
    """Move keyboard focus to `element` once the browser has drawn the change that made it visible."""
    ui.run_javascript(f'requestAnimationFrame(() => {{ if ({when}) getHtmlElement({element.id})?.focus(); }})')


def _format_time(moment: datetime | None) -> str:
    return times.both(moment, times.now(), times.reader_zone()) if moment else ''


def _renewal_text(organization: Organization) -> str | None:
    end = organization.current_period_end
    if end is None or organization.subscription_status in billing.ENDED_STATUSES:
        return None
    if organization.subscription_status == SubscriptionStatus.TRIALING:
        return f'Trial ends on {end:%Y-%m-%d}'
    return f'Renews on {end:%Y-%m-%d}'
