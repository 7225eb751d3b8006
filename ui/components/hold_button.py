"""A button that acts only after being pressed and held, with a fill that shows the progress."""

from collections.abc import Awaitable, Callable
from weakref import WeakSet

from nicegui import Client, context, events, ui

HOLD_SECONDS = 1.5
COMPLETE_EVENT = 'hold_complete'

# The fill is a pseudo-element, so the button's text (its accessible name) never changes while it fills.
# Quasar's q-btn already uses ::before for its shadow; ::after is free.
_CSS = """
.cxt-hold-button { position: relative; overflow: hidden; touch-action: none; user-select: none;
  -webkit-user-select: none; -webkit-touch-callout: none; }
.cxt-hold-button::after { content: ''; position: absolute; inset: 0; pointer-events: none; background: currentColor;
  opacity: .22; transform: scaleX(0); transform-origin: left center; }
.cxt-hold-button[data-holding]::after { transform: scaleX(1); transition: transform var(--cxt-hold-ms) linear; }
.cxt-hold-button[data-held]::after { transform: scaleX(1); }
"""

# Start: unless already holding, mark the button (the CSS fill runs) and complete after the hold time. On completion the
# action usually removes the row, so whatever lies under the still-pressed finger or pointer when it is released
# would get the click that follows: swallow clicks until shortly after that release (or 10 s at most).
_START = """
const b = getHtmlElement(ELEMENT);
if (!b || b.dataset.holding !== undefined || b.dataset.held !== undefined) return;
b.dataset.holding = "";
b._cxtHold = setTimeout(() => {
  delete b.dataset.holding; b.dataset.held = "";
  const swallow = (e) => { e.preventDefault(); e.stopPropagation(); };
  const ends = ["pointerup", "pointercancel", "keyup"];
  let ended = false;
  const end = () => {
    if (ended) return; ended = true;
    ends.forEach((type) => document.removeEventListener(type, end, true));
    setTimeout(() => document.removeEventListener("click", swallow, true), 400);
  };
  document.addEventListener("click", swallow, true);
  ends.forEach((type) => document.addEventListener(type, end, true));
  setTimeout(end, 10000);
  b.dispatchEvent(new CustomEvent("COMPLETE_EVENT"));
}, MILLISECONDS);
"""
_STOP = 'const b = getHtmlElement(ELEMENT); if (b) { clearTimeout(b._cxtHold); delete b.dataset.holding; }'

_styled_clients: WeakSet[Client] = WeakSet()


class HoldButton(ui.button):
    """Press and hold (mouse, touch, or Space/Enter) for `seconds`; releasing, leaving or cancelling stops it.

    The timing runs in the browser, which sends one `hold_complete` event when the hold completes; a plain click
    does nothing. The handler must re-check permissions: the event proves only that someone held the button.
    """

    def __init__(
        self,
        text: str,
        *,
        on_hold: Callable[[events.GenericEventArguments], Awaitable[None] | None],
        seconds: float = HOLD_SECONDS,
        color: str | None = 'negative',
    ) -> None:
        super().__init__(text, color=color)
        self.seconds = seconds
        self._add_style()
        milliseconds = round(seconds * 1000)
        self.classes('cxt-hold-button').style(f'--cxt-hold-ms: {milliseconds}ms')
        self.props(f'no-caps title="Press and hold for {seconds:g} seconds"')
        start = (
            _START.replace('ELEMENT', str(self.id))
            .replace('MILLISECONDS', str(milliseconds))
            .replace('COMPLETE_EVENT', COMPLETE_EVENT)
        )
        stop = _STOP.replace('ELEMENT', str(self.id))
        # Touch pointers are captured by the pressed element; releasing the capture lets `pointerleave` fire when
        # the finger slides off, which cancels the hold like it does for a mouse.
        self.on(
            'pointerdown',
            js_handler=(
                '(e) => { if (e.button !== 0 || e.isPrimary === false) return;'
                ' if (e.target.hasPointerCapture && e.target.hasPointerCapture(e.pointerId))'
                f' e.target.releasePointerCapture(e.pointerId); {start} }}'
            ),
        )
        for cancel in ('pointerup', 'pointerleave', 'pointercancel', 'blur'):
            self.on(cancel, js_handler=f'() => {{ {stop} }}')
        self.on(
            'keydown', js_handler=f'(e) => {{ if (e.repeat || (e.key !== " " && e.key !== "Enter")) return; {start} }}'
        )
        self.on('keyup', js_handler=f'(e) => {{ if (e.key === " " || e.key === "Enter") {{ {stop} }} }}')
        self.on('contextmenu', js_handler='(e) => e.preventDefault()')
        self.on(COMPLETE_EVENT, on_hold, [])

    def reset(self) -> None:
        """Empty the fill again (after a hold whose action was refused or cancelled)."""
        self.client.run_javascript(f'const b = getHtmlElement({self.id}); if (b) delete b.dataset.held;')

    def _add_style(self) -> None:
        client = context.client
        if client not in _styled_clients:
            _styled_clients.add(client)
            ui.add_css(_CSS)
