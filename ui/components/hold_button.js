// A button that acts only after being pressed and held (mouse, touch, or Space/Enter), with a fill that shows the
// progress (`hold_button.py` has its CSS). The element itself (`<nicegui-hold_button>`) is a plain button with the
// class `cxt-hold-button` and its hold time; the behaviour is one set of listeners on the document, installed when
// this file is first loaded, so it is the same for a `HoldButton` element and for one drawn by a table's row
// template. A hold that completes dispatches `hold_complete` on the button; one released too early (a click or a tap)
// dispatches `hold_short`, so the page can say how to use it.

// Start: unless already holding, mark the button (the CSS fill runs) and complete after the hold time. On completion
// the action usually removes the row, so whatever lies under the still-pressed finger or pointer when it is released
// would get the click that follows: swallow clicks until shortly after that release (or 10 s at most), or until the
// next press or key, which is a new action.
// Touch pointers are captured by the pressed element; releasing the capture lets `pointerleave` fire when the finger
// slides off, which cancels the hold like it does for a mouse.
function install() {
  if (window.cxtHoldInstalled) return;
  window.cxtHoldInstalled = true;
  const find = (e) => (e.target && e.target.closest ? e.target.closest(".cxt-hold-button") : null);
  const start = (b) => {
    if (b.dataset.holding !== undefined || b.dataset.held !== undefined || b.disabled) return;
    b.dataset.holding = "";
    b.cxtHoldTimer = setTimeout(() => {
      delete b.dataset.holding;
      b.dataset.held = "";
      window.cxtHoldPressed = true;
      const swallow = (e) => {
        e.preventDefault();
        e.stopPropagation();
      };
      const ends = ["pointerup", "pointercancel", "keyup"];
      let ended = false;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        document.removeEventListener("click", swallow, true);
        ["pointerdown", "keydown"].forEach((type) => document.removeEventListener(type, release, true));
        window.cxtHoldPressed = false;
        document.dispatchEvent(new CustomEvent("cxt_hold_released"));
      };
      const end = () => {
        if (ended) return;
        ended = true;
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
    clearTimeout(b.cxtHoldTimer);
    delete b.dataset.holding;
    if (short) b.dispatchEvent(new CustomEvent("hold_short"));
  };
  const stopAll = () => document.querySelectorAll(".cxt-hold-button[data-holding]").forEach((b) => stop(b, false));
  document.addEventListener(
    "pointerdown",
    (e) => {
      const b = find(e);
      if (!b || e.button !== 0 || e.isPrimary === false) return;
      window.cxtHoldPointer = e.pointerType;
      const t = e.target;
      if (t.hasPointerCapture && t.hasPointerCapture(e.pointerId)) t.releasePointerCapture(e.pointerId);
      start(b);
    },
    true,
  );
  document.addEventListener(
    "pointerup",
    (e) => {
      const b = find(e);
      if (b) stop(b, true);
      else stopAll();
    },
    true,
  );
  document.addEventListener(
    "pointerleave",
    (e) => {
      if (e.target.classList && e.target.classList.contains("cxt-hold-button")) stop(e.target, false);
    },
    true,
  );
  document.addEventListener("pointercancel", stopAll, true);
  document.addEventListener(
    "focusout",
    (e) => {
      const b = find(e); // Quasar moves the focus between the button and its focus helper: that is not leaving it
      if (b && !(e.relatedTarget && b.contains(e.relatedTarget))) stop(b, false);
    },
    true,
  );
  document.addEventListener(
    "keydown",
    (e) => {
      const b = find(e);
      if (b && !e.repeat && (e.key === " " || e.key === "Enter")) {
        window.cxtHoldPointer = "keyboard";
        start(b);
      }
    },
    true,
  );
  document.addEventListener(
    "keyup",
    (e) => {
      const b = find(e);
      if (b && (e.key === " " || e.key === "Enter")) stop(b, true);
    },
    true,
  );
  document.addEventListener(
    "contextmenu",
    (e) => {
      if (find(e)) e.preventDefault();
    },
    true,
  );
}

install();

// For the server (`hold_button.py`), which names a button by a JavaScript expression.
window.cxtHold = {
  // Empty the fill again (after a hold whose action was refused or cancelled).
  reset(button) {
    if (button) delete button.dataset.held;
  },
  // Focus `find()`'s element once the hold that led here is released (the key or pointer still down would otherwise
  // move the focus again), or now if it is. Not after a finger's hold: focusing a text field would open the phone's
  // keyboard.
  focusAfter(find) {
    if (window.cxtHoldPointer === "touch") return;
    const focus = () => find()?.focus();
    if (window.cxtHoldPressed) document.addEventListener("cxt_hold_released", () => setTimeout(focus, 50), { once: true });
    else focus();
  },
};

export default {
  template: `
    <button type="button" class="cxt-hold-button" :data-hold-ms="milliseconds"
      :style="{ '--cxt-hold-ms': milliseconds + 'ms' }" :title="'Press and hold for ' + seconds + ' seconds'">
      <slot></slot>
    </button>
  `,
  props: {
    seconds: { type: Number, default: 1.5 },
  },
  computed: {
    milliseconds() {
      return Math.round(this.seconds * 1000);
    },
  },
  methods: {
    reset() {
      window.cxtHold.reset(this.$el);
    },
  },
};
