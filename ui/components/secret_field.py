"""A read-only field that shows a mask until revealed, with `Copy` inside it while revealed, and masks itself again
after a while (saying when, so nobody loses the key mid-copy)."""

from collections.abc import Callable

from nicegui import ui

REVEAL_SECONDS = 30.0
NEW_KEY_HINT = 'Your new key stays shown until you hide it: copy it into your Kustomer app settings now.'


class SecretField(ui.input):
    def __init__(
        self,
        label: str,
        *,
        masked: str,
        on_visibility_change: Callable[[bool], None] | None = None,
        on_copy: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(label, value=masked)
        self.props('readonly input-class="font-mono"')
        self._masked = masked
        self._timer: ui.timer | None = None
        self._countdown: ui.timer | None = None
        self._left = 0
        self._on_visibility_change = on_visibility_change
        self.revealed = False
        # The hint lives in the field's `hint` slot, one label whose text changes: Quasar keys its own `hint` prop's
        # message by its text, so a countdown there would fade each second's message out (and fail contrast while
        # it fades). Shown only while the key is (`bottom-slots`).
        with self.add_slot('hint'):
            self.hint = ui.label().classes('text-grey-8').mark('key-hint')
        self.copy_button: ui.button | None = None
        if on_copy is not None:
            # Drawn inside the field, where the eye already is (Stripe, Unkey), but not inside its <label> element:
            # there it would be named by the field's label. Only there while the key is shown.
            assert self.parent_slot is not None  # the caller's wrapper, `relative`, holds the button too
            with self.parent_slot:
                self.copy_button = ui.button('Copy', icon='content_copy', on_click=on_copy)
            self.copy_button.props('flat dense no-caps').classes('absolute').style('right: 8px; top: 16px')
            self.copy_button.mark('copy-key')
            self.copy_button.set_visibility(False)

    def reveal(self, secret: str, *, stays: bool = False) -> None:
        """Show `secret` and mask it again after REVEAL_SECONDS, counting down in the field's hint; a key just made
        (`stays`) stays until hidden: an admin pasting it elsewhere must not lose it half-way."""
        self._cancel_timer()
        self.value = secret
        self._set_revealed(True)
        # The button that revealed it usually disappears now: keep keyboard and screen-reader users here, on the
        # key itself, instead of dropping their focus back to the top of the page.
        self.run_method('focus')
        if stays:
            self._show_hint(NEW_KEY_HINT)
            return
        self._left = round(REVEAL_SECONDS)
        self._show_countdown()
        self._timer = ui.timer(REVEAL_SECONDS, self.hide, once=True)
        self._countdown = ui.timer(1.0, self._tick)

    def _tick(self) -> None:
        self._left = max(self._left - 1, 0)
        self._show_countdown()

    def _show_countdown(self) -> None:
        self._show_hint(f'Hidden again in {self._left} s')

    def _show_hint(self, text: str) -> None:
        self.hint.text = text
        self.props('bottom-slots')

    def hide(self) -> None:
        self._cancel_timer()
        self.hint.text = ''
        self.props(remove='bottom-slots')
        self.value = self._masked
        self._set_revealed(False)

    def _set_revealed(self, revealed: bool) -> None:
        self.revealed = revealed
        if self.copy_button is not None:
            self.copy_button.set_visibility(revealed)
        if self._on_visibility_change is not None:
            self._on_visibility_change(revealed)

    def _cancel_timer(self) -> None:
        for timer in (self._timer, self._countdown):
            if timer is not None:
                timer.cancel()
        self._timer = self._countdown = None
