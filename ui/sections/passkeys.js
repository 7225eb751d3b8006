// The browser's side of a passkey ceremony: `start()` hands the server's options to navigator.credentials and
// emits `finished` with the credential (JSON, base64url like py_webauthn expects) or `failed` with a reason.
// `start()` runs inside the click that asked for it (browsers such as Safari insist on a user gesture), so the
// options are loaded before the click, never fetched in between.

function fromBase64url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
}

function toBase64url(buffer) {
  let binary = "";
  new Uint8Array(buffer).forEach((byte) => (binary += String.fromCharCode(byte)));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function withIds(descriptors) {
  return (descriptors || []).map((descriptor) => ({ ...descriptor, id: fromBase64url(descriptor.id) }));
}

function creationOptions(options) {
  return {
    ...options,
    challenge: fromBase64url(options.challenge),
    user: { ...options.user, id: fromBase64url(options.user.id) },
    excludeCredentials: withIds(options.excludeCredentials),
  };
}

function requestOptions(options) {
  return { ...options, challenge: fromBase64url(options.challenge), allowCredentials: withIds(options.allowCredentials) };
}

function credentialJson(credential) {
  const response = credential.response;
  const json = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    response: { clientDataJSON: toBase64url(response.clientDataJSON) },
  };
  if (response.attestationObject) {
    json.response.attestationObject = toBase64url(response.attestationObject);
    json.response.transports = response.getTransports ? response.getTransports() : [];
  } else {
    json.response.authenticatorData = toBase64url(response.authenticatorData);
    json.response.signature = toBase64url(response.signature);
    if (response.userHandle) json.response.userHandle = toBase64url(response.userHandle);
  }
  return json;
}

function reasonOf(error) {
  const name = (error && error.name) || "Error";
  if (name === "NotAllowedError" || name === "AbortError") return { reason: "cancelled" };
  if (name === "InvalidStateError") return { reason: "exists" };
  if (name === "SecurityError") return { reason: "security" };
  if (name === "NotSupportedError") return { reason: "unsupported" };
  return { reason: "error", detail: name };
}

export default {
  props: {
    mode: String, // "create" (add a passkey) or "get" (sign in)
    options: Object,
  },
  data() {
    return { busy: false };
  },
  render() {
    return null;
  },
  methods: {
    supported() {
      return Boolean(window.PublicKeyCredential && navigator.credentials && window.isSecureContext);
    },
    start() {
      if (!this.supported()) {
        this.$emit("failed", { reason: "unsupported" });
        return;
      }
      if (!this.options) {
        this.$emit("failed", { reason: "not_ready" });
        return;
      }
      if (this.busy) return; // the browser's prompt is open already
      let pending;
      try {
        pending =
          this.mode === "create"
            ? navigator.credentials.create({ publicKey: creationOptions(this.options) })
            : navigator.credentials.get({ publicKey: requestOptions(this.options) });
      } catch (error) {
        this.$emit("failed", reasonOf(error));
        return;
      }
      this.busy = true;
      this.$emit("started", {});
      pending
        .finally(() => (this.busy = false))
        .then(
          (credential) =>
            credential
              ? this.$emit("finished", { credential: credentialJson(credential) })
              : this.$emit("failed", { reason: "cancelled" }),
          (error) => this.$emit("failed", reasonOf(error)),
        );
    },
  },
};
