"""A button that acts only after being pressed and held, with a fill that shows the progress.

The behaviour lives in one small script shared by every page (event delegation on the document), so it works the
same for a `HoldButton` element and for a button drawn by a table's row template: any element with the class
`cxt-hold-button` (and its hold time in `data-hold-ms`) dispatches `hold_complete` when a hold completes and
`hold_short` when it is released too early (a click or a tap), so the page can say how to use it.
"""

from collections.abc import Awaitable, Callable

from nicegui import Client, events, ui

HOLD_SECONDS = 1.5
COMPLETE_EVENT = 'hold_complete'
SHORT_EVENT = 'hold_short'
HOLD_CLASS = 'cxt-hold-button'

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

# Start: unless already holding, mark the button (the CSS fill runs) and complete after the hold time. On completion
# the action usually removes the row, so whatever lies under the still-pressed finger or pointer when it is released
# would get the click that follows: swallow clicks until shortly after that release (or 10 s at most), or until the
# next press or key, which is a new action.
# Touch pointers are captured by the pressed element; releasing the capture lets `pointerleave` fire when the finger
# slides off, which cancels the hold like it does for a mouse.
_SCRIPT = """
(() => {
  if (window.cxtHoldInstalled) return;
  window.cxtHoldInstalled = true;
  const find = (e) => (e.target && e.target.closest ? e.target.closest(".cxt-hold-button") : null);
  const start = (b) => {
    if (b.dataset.holding !== undefined || b.dataset.held !== undefined || b.disabled) return;
    b.dataset.holding = "";
    b._cxtHold = setTimeout(() => {
      delete b.dataset.holding; b.dataset.held = "";
      window.cxtHoldPressed = true;
      const swallow = (e) => { e.preventDefault(); e.stopPropagation(); };
      const ends = ["pointerup", "pointercancel", "keyup"];
      let ended = false;
      let released = false;
      const release = () => {
        if (released) return; released = true;
        document.removeEventListener("click", swallow, true);
        ["pointerdown", "keydown"].forEach((type) => document.removeEventListener(type, release, true));
        window.cxtHoldPressed = false;
        document.dispatchEvent(new CustomEvent("cxt_hold_released"));
      };
      const end = () => {
        if (ended) return; ended = true;
        ends.forEach((type) => document.removeEventListener(type, end, true));
        // The release's own click comes at once (a tap's a moment later): swallowed. The next press or key is a
        // new action (e.g. `Send Invite` right after a removal) and must not be.
        ["pointerdown", "keydown"].forEach((type) => document.addEventListener(type, release, true));
        setTimeout(release, 400);
      };
      document.addEventListener("click", swallow, true);
      ends.forEach((type) => document.addEventListener(type, end, true));
      setTimeout(end, 10000);
      b.dispatchEvent(new CustomEvent("hold_complete"));
    }, Number(b.dataset.holdMs || 1500));
  };
  const stop = (b, short) => {
    if (b.dataset.holding === undefined) return;
    clearTimeout(b._cxtHold);
    delete b.dataset.holding;
    if (short) b.dispatchEvent(new CustomEvent("hold_short"));
  };
  const stopAll = () => document.querySelectorAll(".cxt-hold-button[data-holding]").forEach((b) => stop(b, false));
  document.addEventListener("pointerdown", (e) => {
    const b = find(e);
    if (!b || e.button !== 0 || e.isPrimary === false) return;
    window.cxtHoldPointer = e.pointerType;
    const t = e.target;
    if (t.hasPointerCapture && t.hasPointerCapture(e.pointerId)) t.releasePointerCapture(e.pointerId);
    start(b);
  }, true);
  document.addEventListener("pointerup", (e) => { const b = find(e); if (b) stop(b, true); else stopAll(); }, true);
  document.addEventListener("pointerleave", (e) => {
    if (e.target.classList && e.target.classList.contains("cxt-hold-button")) stop(e.target, false);
  }, true);
  document.addEventListener("pointercancel", stopAll, true);
  document.addEventListener("focusout", (e) => {
    const b = find(e);  // Quasar moves the focus between the button and its focus helper: that is not leaving it
    if (b && !(e.relatedTarget && b.contains(e.relatedTarget))) stop(b, false);
  }, true);
  document.addEventListener("keydown", (e) => {
    const b = find(e);
    if (b && !e.repeat && (e.key === " " || e.key === "Enter")) { window.cxtHoldPointer = "keyboard"; start(b); }
  }, true);
  document.addEventListener("keyup", (e) => {
    const b = find(e);
    if (b && (e.key === " " || e.key === "Enter")) stop(b, true);
  }, true);
  document.addEventListener("contextmenu", (e) => { if (find(e)) e.preventDefault(); }, true);
})();
"""

ui.add_body_html(f'<style>{_CSS}</style>\n<script>{_SCRIPT}</script>', shared=True)


def hold_attributes(seconds: float = HOLD_SECONDS) -> str:
    """The attributes (besides the class `HOLD_CLASS`) that make a button in a row template a hold button."""
    milliseconds = round(seconds * 1000)
    return (
        f'data-hold-ms="{milliseconds}" style="--cxt-hold-ms: {milliseconds}ms" '
        f'title="Press and hold for {seconds:g} seconds"'
    )


class HoldButton(ui.button):
    """Press and hold (mouse, touch, or Space/Enter) for `seconds`; releasing, leaving or cancelling stops it.

    The timing runs in the browser, which sends one `hold_complete` event when the hold completes; a plain click
    sends `hold_short` (to `on_short`, if given) and does nothing else. The handler must re-check permissions: the
    event proves only that someone held the button.
    """

    def __init__(
        self,
        text: str,
        *,
        on_hold: Callable[[events.GenericEventArguments], Awaitable[None] | None],
        on_short: Callable[[events.GenericEventArguments], Awaitable[None] | None] | None = None,
        seconds: float = HOLD_SECONDS,
        color: str | None = 'negative',
    ) -> None:
        super().__init__(text, color=color)
        self.seconds = seconds
        milliseconds = round(seconds * 1000)
        self.classes(HOLD_CLASS).style(f'--cxt-hold-ms: {milliseconds}ms')
        self.props(f'no-caps data-hold-ms={milliseconds} title="Press and hold for {seconds:g} seconds"')
        self.on(COMPLETE_EVENT, on_hold, [])
        if on_short is not None:
            self.on(SHORT_EVENT, on_short, [])

    def reset(self) -> None:
        """Empty the fill again (after a hold whose action was refused or cancelled)."""
        reset_fill(self.client, f'getHtmlElement({self.id})')


def focus_after_hold(client: Client, element_js: str) -> None:
    """Focus what `element_js` finds once the hold that led here is released (the key or pointer still down would
    otherwise move the focus again), or now if it is. Not after a finger's hold: focusing a text field would open
    the phone's keyboard."""
    client.run_javascript(
        f'if (window.cxtHoldPointer !== "touch") {{ const f = () => {{ const e = {element_js}; if (e) e.focus(); }};'
        ' if (window.cxtHoldPressed) document.addEventListener("cxt_hold_released", () => setTimeout(f, 50),'
        ' {once: true}); else f(); }'
    )


def reset_fill(client: Client, element_js: str) -> None:
    """Empty the fill of the hold button `element_js` finds (a JavaScript expression) on `client`'s page."""
    client.run_javascript(f'const b = {element_js}; if (b) delete b.dataset.held;')
