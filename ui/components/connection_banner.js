// The page's connection to the server, shown: while the page socket is down, a banner across the top of the page
// says so and that nothing is saved, and every control that would send something is off (buttons disabled, clicks
// and Enter held back, so nothing waits in the socket's buffer to be sent later). When the socket is back, the banner
// goes; after a server restart NiceGUI's page script reloads the page (the socket guard refuses the old page in the
// way that makes it do so), and the address keeps the tab (`/?tab=…`).

const OFF_MARK = "data-cxt-offline";

export default {
  template: `
    <div v-if="lost" role="alert" class="cxt-connection-banner">
      <span class="material-icons" aria-hidden="true">cloud_off</span>
      <span>{{ text }}</span>
    </div>`,
  props: { text: String },
  data() {
    return { lost: false };
  },
  mounted() {
    this.holdBack = (event) => {
      if (!this.lost || event.target.closest?.(".cxt-connection-banner")) return;
      if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
      if (event.type === "keydown" && event.key === " " && !event.target.closest?.("button, [role=switch]")) return;
      event.preventDefault();
      event.stopImmediatePropagation();
    };
    document.addEventListener("click", this.holdBack, true);
    document.addEventListener("keydown", this.holdBack, true);
    this.waiting = setInterval(() => {
      if (!window.socket) return;
      clearInterval(this.waiting);
      window.socket.on("disconnect", () => this.show(true));
      window.socket.on("connect", () => this.show(false));
      window.socket.on("connect_error", () => this.show(!window.socket.connected));
    }, 50);
  },
  unmounted() {
    clearInterval(this.waiting);
    document.removeEventListener("click", this.holdBack, true);
    document.removeEventListener("keydown", this.holdBack, true);
  },
  methods: {
    show(lost) {
      if (lost === this.lost) return;
      this.lost = lost;
      document.body.classList.toggle("cxt-offline", lost);
      if (lost) {
        for (const control of document.querySelectorAll("button:not([disabled]), [role=switch]")) {
          if (control.closest(".cxt-connection-banner")) continue;
          control.setAttribute(OFF_MARK, "");
          if (control.tagName === "BUTTON") control.setAttribute("disabled", "");
          control.setAttribute("aria-disabled", "true");
        }
      } else {
        for (const control of document.querySelectorAll(`[${OFF_MARK}]`)) {
          control.removeAttribute(OFF_MARK);
          control.removeAttribute("disabled");
          control.removeAttribute("aria-disabled");
        }
        // Anything that waited while the socket was down was never the person's intent any more: drop it.
        if (window.socket?.sendBuffer) window.socket.sendBuffer.length = 0;
      }
    },
  },
};
