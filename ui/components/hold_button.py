"""A button that acts only after being pressed and held, with a fill that shows the progress.

Its browser code is `hold_button.js`: a plain button (`<nicegui-hold_button>`, `TAG`) whose hold is timed in the
browser, which sends one `hold_complete` event when the hold completes and `hold_short` when it is released too early
(a click or a tap), so the page can say how to use it. A table's row template draws it by its tag (`Hold to Remove`
in each Team Members row's menu); a page that does so places one idle `HoldButton` (`HoldButton.load`), because the
browser learns a component only from an element of it.
"""

from collections.abc import Awaitable, Callable

from nicegui import Client, events, ui
from nicegui.elements.mixins.text_element import TextElement

HOLD_SECONDS = 1.5
COMPLETE_EVENT = 'hold_complete'
SHORT_EVENT = 'hold_short'

# The fill is a pseudo-element, so the button's text (its accessible name) never changes while it fills.
# Quasar's q-btn already uses ::before for its shadow; ::after is free.
_CSS = """
.cxt-hold-button { position: relative; overflow: hidden; touch-action: none; user-select: none;
  -webkit-user-select: none; -webkit-touch-callout: none; }
.cxt-hold-button::after { content: ''; position: absolute; inset: 0; pointer-events: none; background: currentColor;
  opacity: .22; transform: scaleX(0); transform-origin: left center; }
.cxt-hold-button[data-holding]::after { transform: scaleX(1); transition: transform var(--cxt-hold-ms, 1500ms) linear; }
.cxt-hold-button[data-held]::after { transform: scaleX(1); }
"""
ui.add_css(_CSS, shared=True)


class HoldButton(TextElement, component='hold_button.js'):
    """Press and hold (mouse, touch, or Space/Enter) for `seconds`; releasing, leaving or cancelling stops it.

    `on_hold` gets the one `hold_complete` event a completed hold sends; a plain click sends `hold_short` (to
    `on_short`, if given) and does nothing else. The handler must re-check permissions: the event proves only that
    someone held the button.
    """

    def __init__(
        self,
        text: str,
        *,
        on_hold: Callable[[events.GenericEventArguments], Awaitable[None] | None] | None = None,
        on_short: Callable[[events.GenericEventArguments], Awaitable[None] | None] | None = None,
        seconds: float = HOLD_SECONDS,
    ) -> None:
        super().__init__(text=text)  # the button's text is its accessible name; it never changes while it fills
        self.props['seconds'] = seconds
        if on_hold is not None:
            self.on(COMPLETE_EVENT, on_hold, [])
        if on_short is not None:
            self.on(SHORT_EVENT, on_short, [])

    @classmethod
    def load(cls) -> 'HoldButton':
        """An idle, hidden hold button, so the browser knows the component that row templates draw by `TAG`."""
        return cls('').classes('hidden').props('disabled tabindex=-1 aria-hidden=true')

    def reset(self) -> None:
        """Empty the fill again (after a hold whose action was refused or cancelled)."""
        self.run_method('reset')


def _tag() -> str:
    assert HoldButton.component is not None
    return HoldButton.component.tag


TAG = _tag()


def focus_after_hold(client: Client, element_js: str) -> None:
    """Focus what `element_js` finds once the hold that led here is released (the key or pointer still down would
    otherwise move the focus again), or now if it is. Not after a finger's hold: focusing a text field would open
    the phone's keyboard."""
    client.run_javascript(f'window.cxtHold?.focusAfter(() => {element_js})')


def reset_fill(client: Client, element_js: str) -> None:
    """Empty the fill of the hold button `element_js` finds (a JavaScript expression) on `client`'s page."""
    client.run_javascript(f'window.cxtHold?.reset({element_js})')
