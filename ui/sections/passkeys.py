"""Passkeys in the browser: the `Passkeys` card of the Security page and `Sign in with a passkey` on `/login`.

The browser does the ceremony (`passkeys.js`, inside the click, as Safari requires); the server makes each challenge,
keeps it in this page's `ChallengeSlot`, and checks the answer (`services/identity/passkeys.py`).
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from nicegui import events, ui
from nicegui.element import Element

from services.acting import SCOPES
from services.identity import passkeys, sign_in
from ui import actions, session, sign_in_binding, theme
from ui.components import times

# What the person is told when the browser's part did not happen (nothing reached the server).
_ADD_FAILURES = {
    'unsupported': 'This browser cannot create passkeys here. Try another browser or device.',
    'cancelled': 'No passkey was added: the request was cancelled or timed out.',
    'exists': 'This device already holds a passkey for your account.',
    'security': 'The browser refused to create a passkey for this address. Passkeys need the dashboard at the '
    'address in CXT_PUBLIC_URL.',
    'not_ready': 'The passkey request is not ready yet. Try again.',
}
_SIGN_IN_FAILURES = {
    'unsupported': 'This browser cannot use passkeys here. Sign in with your email and password instead.',
    'cancelled': 'No passkey was used: the request was cancelled or timed out. Try again, or sign in with your '
    'email and password.',
    'security': 'The browser refused to use a passkey for this address. Sign in with your email and password.',
    'not_ready': 'The passkey request is not ready yet. Try again.',
}
_SECOND_STEP_FAILURES = {
    **_SIGN_IN_FAILURES,
    'unsupported': 'This browser cannot use passkeys here. Use another browser or device that holds your passkey.',
    'cancelled': 'No passkey was used: the request was cancelled or timed out. Try again.',
    'security': 'The browser refused to use a passkey for this address.',
}
_OTHER_FAILURE = 'The passkey request failed ({detail}). Try again.'


class PasskeyCeremony(Element, component='passkeys.js'):
    """The browser's `navigator.credentials` call for one button; shows nothing itself.

    `load` gives it the server's options before the click; the button's click starts the ceremony right in the
    browser, and `on_finished` receives the credential (a dict) or `on_failed` a reason (`cancelled`,
    `unsupported`, `exists`, `security`, `not_ready`, `error`) and a detail.
    """

    def __init__(
        self,
        mode: Literal['create', 'get'],
        *,
        on_finished: Callable[[dict[str, Any]], Awaitable[None]],
        on_failed: Callable[[str, str], None],
    ) -> None:
        super().__init__()
        self.props['mode'] = mode
        self.props['options'] = None
        self.pending = False
        self._on_finished = on_finished
        self._on_failed = on_failed
        self.on('started', self._started)
        self.on('finished', self._finished)
        self.on('failed', self._failed)

    def load(self, options: dict[str, Any]) -> None:
        self.props['options'] = options
        self.update()

    def start_on(self, button: ui.button) -> None:
        """Let `button` start the ceremony (in the browser, within its click)."""
        button.on('click', js_handler=f'() => getElement({self.id}).start()')

    def _started(self) -> None:
        self.pending = True

    async def _finished(self, event: events.GenericEventArguments) -> None:
        self.pending = False
        credential = _payload(event).get('credential')
        if not isinstance(credential, dict):
            self._on_failed('error', 'no credential')
            return
        await self._on_finished(credential)

    def _failed(self, event: events.GenericEventArguments) -> None:
        self.pending = False
        payload = _payload(event)
        self._on_failed(str(payload.get('reason') or 'error'), str(payload.get('detail') or 'unknown error')[:60])


def _payload(event: events.GenericEventArguments) -> dict[str, Any]:
    args = event.args[0] if isinstance(event.args, list) and event.args else event.args
    return args if isinstance(args, dict) else {}


def _alert(mark: str) -> ui.label:
    """Where a failure is told: announced by screen readers (role=alert) as soon as it shows."""
    label = ui.label().classes('text-negative text-sm').props('role=alert').mark(mark)
    label.set_visibility(False)
    return label


def _say(label: ui.label, text: str) -> None:
    label.set_text(text)
    label.set_visibility(True)


class PasskeysCard:
    """Card `Passkeys` on the Security page: the person's passkeys (name, added, last used, `Remove`) and
    `Add a passkey`, which asks for the password when the last entry is over 10 minutes old, then for a name."""

    def __init__(self) -> None:
        self.slot = passkeys.ChallengeSlot()
        with ui.card().classes('w-full').mark('passkeys'):
            theme.heading('Passkeys', level=2)
            ui.label(
                'Sign in with your fingerprint, face, screen lock or security key instead of your password and a code.'
            ).classes('text-sm text-grey-8')
            self.container = ui.column().classes('w-full gap-2')
            self.alert = _alert('passkey-error')
            if (reason := passkeys.unavailable_reason()) is not None:
                ui.label(reason).classes('text-sm text-grey-8').mark('passkeys-unavailable')
                self.add_button = None
            else:
                self.add_button = ui.button('Add a passkey', icon='key', on_click=self.prepare).props('outline no-caps')
                with ui.row().classes('w-full items-end gap-2') as self.naming:
                    self.name = ui.input('Passkey name', value=suggested_name(session.user_agent()))
                    self.name.props('maxlength=100').classes('flex-1 min-w-[12rem]').mark('passkey-name')
                    self.create_button = ui.button('Create passkey').props('no-caps').mark('create-passkey')
                    ui.button('Cancel', on_click=self.cancel).props('flat no-caps')
                self.naming.set_visibility(False)
                self.ceremony = PasskeyCeremony('create', on_finished=self.finished, on_failed=self.failed)
                self.ceremony.start_on(self.create_button)
        ui.timer(0, self.reload, once=True)

    async def reload(self) -> None:
        listed = await actions.act(lambda db, me: passkeys.list_passkeys(session=db, actor=me.user), read_only=True)
        if listed is None:
            return
        self.container.clear()
        with self.container:
            if not listed:
                ui.label('No passkeys yet.').classes('text-sm text-grey-8').mark('no-passkeys')
            for info in listed:
                with ui.row().classes('w-full items-center gap-3 rounded-borders border border-gray-300 q-pa-sm'):
                    with ui.column().classes('gap-0 flex-1 min-w-0'):
                        ui.label(info.name).classes('text-body2 break-words').mark('passkey-name-shown')
                        with ui.row().classes('gap-x-1 gap-y-0 text-xs text-grey-8'):
                            times.time_text(info.created_at, prefix='Added ')
                            ui.label('·').props('aria-hidden=true')
                            if info.last_used_at:
                                times.time_text(info.last_used_at, prefix='last used ')
                            else:
                                ui.label('last used never')
                    remove = ui.button('Remove').props('flat dense no-caps color=negative')
                    remove.props.update({'aria-label': f'Remove passkey {info.name}'})  # names which passkey
                    remove.on_click(functools.partial(self.remove, info, remove))

    async def prepare(self) -> None:
        """`Add a passkey`: the password if it is due, then the options (a fresh challenge), then the name."""
        self.alert.set_visibility(False)
        challenge = self.slot.issue()
        options = await actions.act(
            lambda db, me: passkeys.registration_options(session=db, actor=me.user, challenge=challenge),
            button=self.add_button,
            recent_password=True,
            read_only=True,
        )
        if options is None:
            return
        self.ceremony.load(options)
        self.naming.set_visibility(True)
        self.name.run_method('focus')

    def cancel(self) -> None:
        self.slot.take()
        self.naming.set_visibility(False)
        self._focus_add()

    async def finished(self, credential: dict[str, Any]) -> None:
        self.alert.set_visibility(False)  # an earlier try's message is out of date
        challenge, name = self.slot.take(credential), self.name.value or ''
        added = await actions.act(
            lambda db, me: passkeys.add_passkey(
                session=db, actor=me.user, name=name, credential=credential, challenge=challenge, ip=me.ip
            ),
            button=self.create_button,
            fields={'name': self.name},
        )
        self.naming.set_visibility(False)
        self._focus_add()
        if added is None:
            return
        ui.notify(f'Passkey “{added.name}” added. You can sign in with it now.', type='positive')
        await self.reload()

    def failed(self, reason: str, detail: str) -> None:
        _say(self.alert, _ADD_FAILURES.get(reason) or _OTHER_FAILURE.format(detail=detail))
        if reason in {'exists', 'unsupported', 'security'}:
            self.cancel()

    async def remove(self, info: passkeys.PasskeyInfo, button: ui.button) -> None:
        removed = await actions.act(
            lambda db, me: passkeys.remove_passkey(session=db, actor=me, passkey_id=info.id),
            button=button,
            recent_password=True,
        )
        if removed is None:
            return
        ui.notify(f'Passkey “{removed}” removed. It no longer signs in.', type='positive')
        await self.reload()
        self._focus_add()

    def _focus_add(self) -> None:
        if self.add_button is not None:
            self.add_button.client.run_javascript(f'getHtmlElement({self.add_button.id})?.focus()')


def passkeys_section() -> None:
    """The Security page's `Passkeys` card."""
    PasskeysCard()


class PasskeySignInButton:
    """`Sign in with a passkey` on `/login`: any passkey of this dashboard, no email needed. A passkey counts as
    both factors, so it leads straight to the page asked for."""

    def __init__(self, *, target: str) -> None:
        self.target = target
        self.ip, self.user_agent = session.client_ip(), session.user_agent()
        self.slot = passkeys.ChallengeSlot()
        self.button = ui.button('Sign in with a passkey', icon='key').props('outline no-caps').classes('w-full')
        self.alert = _alert('passkey-sign-in-error')
        self.ceremony = PasskeyCeremony('get', on_finished=self.finished, on_failed=self.failed)
        self.ceremony.start_on(self.button)
        self.renew()
        # A challenge lives 5 minutes: a page left open gets a fresh one before that, never during a ceremony.
        ui.timer((passkeys.CHALLENGE_LIFETIME * 0.8).total_seconds(), self.renew, immediate=False)

    def renew(self) -> None:
        if not self.ceremony.pending:
            self.ceremony.load(passkeys.sign_in_options(challenge=self.slot.issue()))

    async def finished(self, credential: dict[str, Any]) -> None:
        challenge, ip, agent = self.slot.take(credential), self.ip, self.user_agent
        next_step = await actions.submit(
            lambda: sign_in.sign_in_with_passkey(
                scopes=SCOPES, credential=credential, challenge=challenge, ip=ip, user_agent=agent
            ),
            button=self.button,
            message=self.alert,
        )
        if next_step is None:
            self.renew()  # single use: the next try gets a new challenge
            return
        sign_in_binding.go(session.next_url(next_step, self.target))

    def failed(self, reason: str, detail: str) -> None:
        _say(self.alert, _SIGN_IN_FAILURES.get(reason) or _OTHER_FAILURE.format(detail=detail))


class PasskeySecondStepButton:
    """`Use a passkey` at the second step after a password (`/login/code`): one of the pending account's own
    passkeys, then the session (a sign-in with a second factor: it counts as a recent password entry)."""

    def __init__(self, *, token: str | None, target: str) -> None:
        self.token, self.target = token, target
        self.ip, self.user_agent = session.client_ip(), session.user_agent()
        self.slot = passkeys.ChallengeSlot()
        self.button = ui.button('Use a passkey', icon='key').props('outline no-caps').classes('w-full')
        self.alert = _alert('passkey-second-step-error')
        self.ceremony = PasskeyCeremony('get', on_finished=self.finished, on_failed=self.failed)
        self.ceremony.start_on(self.button)
        self.button.disable()  # until the account's options are here: a click before would only say `not ready`
        ui.timer(0, self.renew, once=True)
        ui.timer((passkeys.CHALLENGE_LIFETIME * 0.8).total_seconds(), self.renew, immediate=False)

    async def renew(self) -> None:
        if self.ceremony.pending:
            return
        challenge, token = self.slot.issue(), self.token
        options = await actions.submit(
            lambda: sign_in.second_step_passkey_options(scopes=SCOPES, token=token, challenge=challenge)
        )
        if options is not None:
            self.ceremony.load(options)
            self.button.enable()

    async def finished(self, credential: dict[str, Any]) -> None:
        challenge, token, ip, agent = self.slot.take(credential), self.token, self.ip, self.user_agent
        next_step = await actions.submit(
            lambda: sign_in.sign_in_with_second_step_passkey(
                scopes=SCOPES, token=token, credential=credential, challenge=challenge, ip=ip, user_agent=agent
            ),
            button=self.button,
            message=self.alert,
        )
        if next_step is None:
            await self.renew()  # single use: the next try gets a new challenge
            return
        sign_in_binding.go(session.next_url(next_step, self.target))

    def failed(self, reason: str, detail: str) -> None:
        _say(self.alert, _SECOND_STEP_FAILURES.get(reason) or _OTHER_FAILURE.format(detail=detail))


def passkey_sign_in_button(target: str) -> None:
    """`/login`'s `Sign in with a passkey` (nothing where passkeys cannot work, see `passkeys.unavailable_reason`)."""
    if passkeys.unavailable_reason() is None:
        PasskeySignInButton(target=target)


def suggested_name(user_agent: str | None) -> str:
    """A first guess at the passkey's name from the browser, like `Chrome on Linux`."""
    return browser_name(user_agent) or passkeys.DEFAULT_NAME


def browser_name(user_agent: str | None) -> str | None:
    """`Chrome on Linux`, `Safari on iPhone`, `Firefox`: what a person calls a browser (None when unrecognised); the
    Security page names sessions so too."""
    agent = user_agent or ''
    browser = next(
        (
            name
            for token, name in (('Edg/', 'Edge'), ('Firefox/', 'Firefox'), ('Chrome/', 'Chrome'), ('Safari/', 'Safari'))
            if token in agent
        ),
        None,
    )
    system = next(
        (
            name
            for token, name in (
                ('iPhone', 'iPhone'),
                ('iPad', 'iPad'),
                ('Android', 'Android'),
                ('Mac OS X', 'Mac'),
                ('Windows', 'Windows'),
                ('CrOS', 'ChromeOS'),
                ('Linux', 'Linux'),
            )
            if token in agent
        ),
        None,
    )
    if browser and system:
        return f'{browser} on {system}'
    return browser or system
