"""Arrow keys for a radio group, as every native one has: Up/Left and Down/Right move to the previous or next choice
and choose it (wrapping round), Home and End to the first and last. Quasar's radios are only Tab stops."""

from nicegui import ui

# In the browser: the radios are the group's `[role=radio]` children; clicking one chooses it through Quasar.
_ARROWS = """(event) => {
  const steps = {ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1};
  if (!(event.key in steps) && event.key !== 'Home' && event.key !== 'End') return;
  const radios = [...event.currentTarget.querySelectorAll('[role=radio]')];
  const at = radios.indexOf(document.activeElement.closest('[role=radio]'));
  if (at < 0) return;
  event.preventDefault();
  const next = event.key === 'Home' ? 0 : event.key === 'End' ? radios.length - 1
    : (at + steps[event.key] + radios.length) % radios.length;
  radios[next].click();
  radios[next].focus();
}"""


def arrow_keys(radio: ui.radio) -> ui.radio:
    """Give `radio` arrow-key movement between its choices; returns it."""
    radio.on('keydown', js_handler=_ARROWS)
    return radio
