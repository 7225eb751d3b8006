"""The organization's rules, for admins (`/organization`): what everyone in the organization must do to sign in.

One card, `Sign-in rules`, with one switch per rule. A rule is a `Rule` (its label, what it means, how to save it, what
to say after); adding one (say `Require single sign-on for everyone`) is one more entry in `rules()`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import events, ui
from sqlmodel import Session

from models import Organization
from services.acting import Actor
from services.identity import two_factor
from ui import actions, theme

REQUIRE_TWO_FACTOR = 'Require two-factor authentication for everyone'


@dataclass(frozen=True)
class Rule:
    """One switch: `save(db, me, on)` stores it (asking for the recent password first); `after(on)` runs once saved."""

    label: str
    explanation: str
    marker: str
    value: Callable[[Organization], bool]
    save: Callable[[Session, Actor, bool], object]
    said_on: str
    said_off: str
    after: Callable[[bool], Awaitable[None]] | None = None


def _save_two_factor(db: Session, me: Actor, required: bool) -> object:
    return two_factor.set_requirement(session=db, actor=me, required=required)


def rules() -> list[Rule]:
    return [
        Rule(
            label=REQUIRE_TWO_FACTOR,
            explanation=(
                'Members without a second factor are signed out and set one up at their next sign-in. '
                'Turn on your own authenticator app or passkey first (on your Security page).'
            ),
            marker='require-two-factor',
            value=lambda organization: organization.require_two_factor,
            save=_save_two_factor,
            said_on='Everyone now signs in with two-factor authentication',
            said_off='Two-factor authentication is no longer required',
        ),
    ]


class OrganizationRules:
    """Card `Sign-in rules`: each rule's switch and what it means; a change asks for the recent password, and a
    refused one puts the switch back."""

    def __init__(self, *, organization: Organization) -> None:
        with ui.card().classes('w-full gap-3').mark('organization-rules'):
            theme.heading('Sign-in rules')
            ui.label('These apply to everyone in your organization. Only admins see them.').classes(
                'text-sm text-grey-8'
            )
            for rule in rules():
                RuleSwitch(rule, value=rule.value(organization))


class RuleSwitch:
    def __init__(self, rule: Rule, *, value: bool) -> None:
        self.rule = rule
        self._reverting = False
        with ui.column().classes('w-full gap-0'):
            self.switch = ui.switch(rule.label, value=value, on_change=self.changed).mark(rule.marker)
            ui.label(rule.explanation).classes('text-sm text-grey-8 q-pl-xl')

    async def changed(self, event: events.ValueChangeEventArguments) -> None:
        if self._reverting:
            return
        on, rule = bool(event.value), self.rule
        saved = await actions.act(lambda db, me: rule.save(db, me, on), recent_password=True)
        if saved is None:  # refused or failed (the person was told why): show what is stored
            self._reverting = True
            try:
                self.switch.value = not on
            finally:
                self._reverting = False
            return
        ui.notify(rule.said_on if on else rule.said_off, type='positive')
        if rule.after is not None:
            await rule.after(on)
