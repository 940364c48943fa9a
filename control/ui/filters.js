// The Other filters tab: each document as checked JSON.
import { $, api, say } from "./common.js";

/** The version of the document shown, what a save is based on. */
export const rawState = { version: 0 };

// ---- other filters, as JSON ----

export async function loadRaw() {
  const r = await api("GET", `/api/filters/${$("#raw-filter").value}`);
  rawState.version = r.version;
  $("#raw-version").textContent = String(r.version);
  $("#raw-doc").value = JSON.stringify(r.doc, null, 2);
}

export function rawDoc() {
  try {
    return JSON.parse($("#raw-doc").value);
  } catch (e) {
    say(`Not valid JSON: ${e.message}`, "error");
    return null;
  }
}
