// The Consumers tab: who may call, their keys and signing keys (a secret shown once).
import { $, api, plural, say } from "./common.js";

// ---- consumers and their API keys ----

let accessVersion;

/** One sentence per rule of the access document in force. */
function accessSentences(doc) {
  const rules = doc.require || [];
  if (rules.length === 0) return ["No path needs a key: every request is anonymous unless it brings a known key."];
  const words = { key: "an API key", signature: "a signed request", token: "a token" };
  return rules.map((r) => {
    const methods = r.methods?.length ? `${r.methods.join(", ")} requests to` : "Requests to";
    const c = r.credentials ?? "key";
    const list = Array.isArray(c) ? c : [c];
    const need = c === "anonymous" ? "need nothing" : `need ${list.map((x) => words[x] ?? x).join(" or ")} (401 without one)`;
    return `${methods} paths starting ${r.prefix || "/"} ${need}.`;
  });
}

export async function makeKey(name) {
  try {
    const r = await api("POST", `/api/consumers/${encodeURIComponent(name)}/keys`, { author: "web UI" }, accessVersion);
    $("#new-key-value").textContent = r.key;
    $("#new-key").hidden = false;
    say(`Version ${r.version}: a new key for ${name} (fingerprint ${r.fingerprint}).`);
    await loadConsumers(true);
  } catch (e) {
    say(e.message, "error");
  }
}

async function makeSigningKey(name) {
  try {
    const r = await api("POST", `/api/consumers/${encodeURIComponent(name)}/signing-keys`, { author: "web UI" }, accessVersion);
    $("#new-key-value").textContent = r.secret;
    $("#new-key").hidden = false;
    say(`Version ${r.version}: a new signing key for ${name}, id ${r.key_id}: sign with that id and this secret.`);
    await loadConsumers(true);
  } catch (e) {
    say(e.message, "error");
  }
}

export async function loadConsumers(keepKey = false) {
  const r = await api("GET", "/api/filters/access");
  accessVersion = r.version;
  // Shown once: gone from the page, not only hidden, once the tab is left or reloaded.
  if (!keepKey) {
    $("#new-key").hidden = true;
    $("#new-key-value").textContent = "";
  }
  $("#consumers-version").textContent = String(r.version);
  $("#access-rules").replaceChildren(...accessSentences(r.doc).map((s) => Object.assign(document.createElement("li"), { textContent: s })));
  const rows = (r.doc.consumers || []).map((c) => {
    const tr = document.createElement("tr");
    const keys = document.createElement("td");
    for (const d of c.key_sha256 || []) {
      const fp = d.slice(0, 16);
      // A new key now; this one keeps working for the grace period chosen below the table.
      const rotate = Object.assign(document.createElement("button"), { type: "button", textContent: `Replace ${fp}`, className: "rotate-key" });
      rotate.addEventListener("click", async () => {
        try {
          const graceS = Number($("#grace").value);
          const v = await api("POST", `/api/consumers/${encodeURIComponent(c.name)}/keys/${fp}/rotate`, { grace_s: graceS, author: "web UI" }, accessVersion);
          $("#new-key-value").textContent = v.key;
          $("#new-key").hidden = false;
          say(
            `Version ${v.version}: a new key for ${c.name} (fingerprint ${v.fingerprint}); the old one, ${fp}, keeps working until ${new Date(v.retiring.until_s * 1000).toLocaleString()}.`,
          );
          await loadConsumers(true);
        } catch (e) {
          say(e.message, "error");
        }
      });
      keys.append(rotate, " ");
      const b = Object.assign(document.createElement("button"), { type: "button", textContent: `Revoke ${fp}`, className: "revoke" });
      b.addEventListener("click", async () => {
        try {
          const v = await api("DELETE", `/api/consumers/${encodeURIComponent(c.name)}/keys/${fp}`, undefined, accessVersion);
          say(`Version ${v.version}: key ${fp} of ${c.name} revoked.`);
          await loadConsumers();
        } catch (e) {
          say(e.message, "error");
        }
      });
      keys.append(b, " ");
    }
    const nowS = Date.now() / 1000;
    for (const r of (c.retiring_keys || []).filter((x) => x.until_s > nowS)) {
      const left = Math.max(1, Math.round((r.until_s - nowS) / 60));
      const span = Object.assign(document.createElement("span"), {
        className: "muted retiring",
        textContent: `${r.sha256.slice(0, 16)} (replaced: works ${left >= 120 ? `${plural(Math.round(left / 60), "more hour")}` : `${plural(left, "more minute")}`})`,
      });
      keys.append(span, " ");
    }
    if (!c.key_sha256?.length) keys.textContent = "none";
    const signing = document.createElement("td");
    for (const k of c.signing_keys || []) {
      const b = Object.assign(document.createElement("button"), { type: "button", textContent: `Revoke ${k.id}`, className: "revoke-signing" });
      b.addEventListener("click", async () => {
        try {
          const v = await api("DELETE", `/api/consumers/${encodeURIComponent(c.name)}/signing-keys/${encodeURIComponent(k.id)}`, undefined, accessVersion);
          say(`Version ${v.version}: signing key ${k.id} of ${c.name} revoked.`);
          await loadConsumers();
        } catch (e) {
          say(e.message, "error");
        }
      });
      signing.append(b, " ");
    }
    if (!c.signing_keys?.length) signing.textContent = "none";
    const more = Object.assign(document.createElement("button"), { type: "button", textContent: "Make a key" });
    more.addEventListener("click", () => makeKey(c.name));
    const moreSigning = Object.assign(document.createElement("button"), { type: "button", textContent: "Make a signing key", className: "make-signing" });
    moreSigning.addEventListener("click", () => makeSigningKey(c.name));
    const cell = document.createElement("td");
    cell.append(more, " ", moreSigning);
    tr.append(Object.assign(document.createElement("td"), { textContent: c.name }), keys, signing, cell);
    return tr;
  });
  $("#consumers tbody").replaceChildren(...rows);
}

/** The token signing keys the gateways verify with (the JWKS), newest last. */
export async function loadTokenKeys() {
  // Past the browser's cache (the gateways may cache it 30 s; this page shows what is published now).
  const jwks = await (await fetch("/.well-known/jwks.json", { cache: "no-store" })).json();
  const rows = jwks.keys.map((k, i) => {
    const tr = document.createElement("tr");
    const kind = i === jwks.keys.length - 1 && jwks.keys.length > 1 ? "newest: signs new tokens once active" : "published";
    tr.append(
      Object.assign(document.createElement("td"), { textContent: k.kid }),
      Object.assign(document.createElement("td"), { textContent: `${k.alg} ${kind}` }),
    );
    return tr;
  });
  $("#token-keys tbody").replaceChildren(...rows);
}

export async function rotateTokenKey() {
  try {
    const r = await api("POST", "/api/tokens/keys/rotate", {});
    say(
      `A new token signing key, ${r.kid}: published now, signing from ${new Date(r.signs_from).toLocaleTimeString()}. Tokens already issued stay valid until they expire.`,
    );
    await loadTokenKeys();
  } catch (e) {
    say(e.status === 401 ? "Sign in with the access token to make a new signing key." : e.message, "error");
  }
}
