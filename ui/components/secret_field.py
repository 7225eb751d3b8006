"""A read-only field that shows a mask until revealed, and masks itself again after a while."""

from collections.abc import Callable

from nicegui import ui

REVEAL_SECONDS = 30.0


class SecretField(ui.input):
    def __init__(self, label: str, *, masked: str, on_visibility_change: Callable[[bool], None] | None = None) -> None:
        super().__init__(label, value=masked)
        self.props('readonly input-class="font-mono"')
        self._masked = masked
        self._timer: ui.timer | None = None
        self._on_visibility_change = on_visibility_change
        self.revealed = False

    def reveal(self, secret: str) -> None:
        """Show `secret` for REVEAL_SECONDS, then mask it again."""
        self._cancel_timer()
        self.value = secret
        self._set_revealed(True)
        # The button that revealed it usually disappears now: keep keyboard and screen-reader users here, on the
        # key itself, instead of dropping their focus back to the top of the page.
        self.run_method('focus')
        self._timer = ui.timer(REVEAL_SECONDS, self.hide, once=True)

    def hide(self) -> None:
        self._cancel_timer()
        self.value = self._masked
        self._set_revealed(False)

    def _set_revealed(self, revealed: bool) -> None:
        self.revealed = revealed
        if self._on_visibility_change is not None:
            self._on_visibility_change(revealed)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
