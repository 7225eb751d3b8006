"""Tab `Dashboard Settings`: Step 1 (the API key, billing) and Step 2 (Kustomer subdomains)."""

import functools
from datetime import datetime

from nicegui import context, ui

from models import ApiKey, Organization, Role, User
from services import api_keys, billing, organizations
from services.api_keys import GRACE_CHOICES, KeyOverview
from services.db import read_scope, write_scope
from ui import actions, open_pages
from ui.components.secret_field import SecretField

ROTATE_WARNING = (
    'Rotating issues a new key. Every integration using the old key — Kustomer app settings and every '
    'CX Toolbox widget — stops working until you replace it with the new key everywhere it is stored.'
)


async def build(*, user: User, organization: Organization, billing_return: str | None = None) -> None:
    overview = await actions.read(lambda db: api_keys.get_overview(session=db, actor=user))
    card = KeyCard(user=user, organization=organization, overview=overview)
    if billing_return is not None:
        card.show_billing_return(billing_return)
    SubdomainsCard(user=user, organization=organization)


class KeyCard:
    """Card `Step 1: Generate API Key`."""

    def __init__(self, *, user: User, organization: Organization, overview: KeyOverview) -> None:
        self.user = user
        self.organization = organization
        self.organization_id = user.organization_id
        self.client = context.client
        self.is_admin = user.role == Role.ADMIN
        with ui.card().classes('w-full'):
            ui.label('Step 1: Generate API Key').classes('text-h6')
            ui.label('All CX Toolbox widgets share this one key. Paste it into your Kustomer app settings.').classes(
                'text-sm text-grey-8'
            )
            self.content(overview)
        open_pages.show_keys(self)

    @ui.refreshable_method
    def content(self, overview: KeyOverview, reveal: str | None = None) -> None:
        """The key, its buttons and notices. A plaintext key is shown by this one render only (`reveal`)."""
        self.field: SecretField | None = None
        if overview.active is None:
            ui.label('Your organization has no API key yet.').classes('text-body2')
        else:
            self.field = SecretField('API Key', masked=overview.masked, on_visibility_change=self._show_revealed)
            self.field.classes('w-full').mark('api-key')
        with ui.row().classes('gap-2 flex-wrap'):
            if self.is_admin:
                self.billing_button = ui.button('Manage Billing', icon='credit_card', on_click=self.open_billing)
                self.billing_button.props('outline no-caps')
                if self.field is None:
                    self.generate_button = ui.button('Generate API Key', icon='add', on_click=self.generate)
                    self.generate_button.props('no-caps')
                else:
                    ui.button('Rotate API Key', icon='autorenew', on_click=self.rotate).props('outline no-caps')
                    self.reveal_button = ui.button('Reveal API Key', icon='visibility', on_click=self.reveal)
                    self.reveal_button.props('no-caps')
                    self.hide_button = ui.button('Hide API Key', icon='visibility_off', on_click=self.field.hide)
                    self.hide_button.props('outline no-caps')
                    self.copy_button = ui.button('Copy', icon='content_copy', on_click=self.copy).props('no-caps')
                    self._show_revealed(False)
        self.subscription()
        for old in overview.in_grace:
            self._grace_notice(old)
        if reveal and self.field is not None:
            self.field.reveal(reveal)

    def _grace_notice(self, old: ApiKey) -> None:
        with ui.row().classes('w-full items-center gap-2 bg-amber-1 rounded-borders q-pa-sm'):
            ui.icon('schedule', color='warning')
            used = _format_time(old.last_used_at) if old.last_used_at else 'never'
            ui.label(
                f'The previous key {api_keys.mask(old.last4)} keeps working until {_format_time(old.expires_at)}. '
                f'Last used: {used}.'
            ).classes('text-body2 flex-1 min-w-0 break-words')
            if self.is_admin:
                assert old.id is not None
                ui.button('Revoke old key now', on_click=functools.partial(self.revoke_old, old.id)).props(
                    'outline dense no-caps color=negative'
                ).mark(f'revoke-old-{old.id}')

    def _show_revealed(self, revealed: bool) -> None:
        if not self.is_admin or self.field is None:
            return
        self.reveal_button.set_visibility(not revealed)
        self.hide_button.set_visibility(revealed)
        self.copy_button.set_visibility(revealed)

    async def reload(self) -> None:
        """Load the key again (after it changed in another process)."""
        await self._reload()

    async def _reload(self, reveal: str | None = None) -> None:
        overview = await actions.read(lambda db: api_keys.get_overview(session=db, actor=self.user))
        self.content.refresh(overview, reveal)

    async def generate(self) -> None:
        plaintext = await actions.act(
            lambda db, me: api_keys.generate_key(session=db, actor=me.user, ip=me.ip), button=self.generate_button
        )
        if plaintext is None:
            return
        await self._reload(reveal=plaintext)
        ui.notify('API key generated. Copy it into your Kustomer app settings.', type='positive')

    async def reveal(self) -> None:
        plaintext = await actions.act(
            lambda db, me: api_keys.reveal_key(
                session=db, actor=me.user, ip=me.ip, password_confirmed_at=me.password_confirmed_at
            ),
            button=self.reveal_button,
            recent_password=True,
        )
        if plaintext is not None and self.field is not None:
            self.field.reveal(plaintext)

    async def copy(self) -> None:
        if self.field is not None and self.field.revealed:
            ui.clipboard.write(self.field.value or '')
            ui.notify('API key copied to the clipboard', type='positive')

    async def rotate(self) -> None:
        if not await actions.confirm_recent_password():
            return
        with ui.dialog() as dialog, ui.card().classes('w-full max-w-lg'):
            ui.label('Rotate API Key?').classes('text-h6')
            ui.label(ROTATE_WARNING).classes('text-body2')
            ui.label('When should the old key stop working?').classes('text-body2 q-mt-sm')
            choice = ui.radio(list(GRACE_CHOICES), value='Immediately').mark('grace')
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat no-caps')
                ui.button('Rotate', on_click=lambda: dialog.submit(choice.value)).props('no-caps color=negative').mark(
                    'confirm-rotate'
                )
        picked = await dialog
        dialog.delete()
        if picked is None:
            return
        plaintext = await actions.act(
            lambda db, me: api_keys.rotate_key(
                session=db,
                actor=me.user,
                grace=GRACE_CHOICES[picked],
                ip=me.ip,
                password_confirmed_at=me.password_confirmed_at,
            ),
            recent_password=True,
        )
        if plaintext is None:
            return
        await self._reload(reveal=plaintext)
        ui.notify('API key rotated. Replace the old key everywhere it is stored.', type='positive')

    async def revoke_old(self, key_id: int) -> None:
        revoked = await actions.act(
            lambda db, me: api_keys.revoke_old_key(session=db, actor=me.user, key_id=key_id, ip=me.ip)
        )
        await self._reload()
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
        redirect = await actions.act_stepwise(_start_billing, button=self.billing_button, recent_password=True)
        if redirect is not None:
            ui.navigate.to(redirect.url)

    def show_billing_return(self, outcome: str) -> None:
        """Back from Stripe Checkout (`/?billing=success|cancelled`): say whether it went through."""
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
            self.subscription.refresh()
            self._watch.cancel()


class SubdomainsCard:
    """Card `Step 2: Configure Kustomer Subdomains`."""

    def __init__(self, *, user: User, organization: Organization) -> None:
        is_admin = user.role == Role.ADMIN
        with ui.card().classes('w-full'):
            ui.label('Step 2: Configure Kustomer Subdomains').classes('text-h6')
            ui.label(
                'Enter the part before .kustomerapp.com, e.g. yourcompany for yourcompany.kustomerapp.com.'
            ).classes('text-sm text-grey-8')
            suffix = f'suffix={organizations.KUSTOMER_SUFFIX} stack-label outlined'
            self.fields = {
                'subdomain': ui.input('Kustomer Organization Sub Domain', value=organization.kustomer_subdomain or '')
                .props(f'{suffix} maxlength=253')
                .classes('w-full')
                .mark('subdomain'),
                'sandbox_subdomain': ui.input(
                    'Kustomer Sandbox Organization Sub Domain',
                    value=organization.kustomer_sandbox_subdomain or '',
                )
                .props(f'{suffix} hint=Optional maxlength=253')
                .classes('w-full')
                .mark('sandbox-subdomain'),
            }
            if is_admin:
                for field in self.fields.values():
                    field.on('keydown.enter', self.save)
                self.save_button = ui.button('Save', icon='save', on_click=self.save).props('no-caps')
            else:
                for field in self.fields.values():
                    field.props('readonly')

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
        self.fields['subdomain'].value = organization.kustomer_subdomain or ''
        self.fields['sandbox_subdomain'].value = organization.kustomer_sandbox_subdomain or ''
        ui.notify('Subdomains saved', type='positive')


def _format_time(moment: datetime | None) -> str:
    return moment.strftime('%Y-%m-%d %H:%M UTC') if moment else ''


def _renewal_text(organization: Organization) -> str | None:
    end = organization.current_period_end
    if end is None or organization.subscription_status in billing.ENDED_STATUSES:
        return None
    if organization.subscription_status == 'trialing':
        return f'Trial ends on {end:%Y-%m-%d}'
    return f'Renews on {end:%Y-%m-%d}'


def _start_billing(me: actions.Actor) -> billing.BillingRedirect:
    """Checkout or the Customer Portal: read the plan, create the Stripe customer once, open Stripe's page, record
    it. No transaction is open while Stripe answers."""
    with read_scope() as db:
        plan = billing.plan_billing(session=db, actor=me.user, password_confirmed_at=me.password_confirmed_at)
    customer_id = plan.customer_id
    if customer_id is None:
        created = billing.create_customer(plan)
        with write_scope() as db:
            customer_id = billing.store_customer(session=db, organization_id=plan.organization_id, customer_id=created)
    redirect = billing.open_billing_session(plan, customer_id)
    with write_scope() as db:
        billing.record_billing_opened(session=db, actor=me.user, redirect=redirect, customer_id=customer_id, ip=me.ip)
    return redirect
