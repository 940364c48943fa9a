// graywall-control UI: plain DOM and ES modules, one per tab, no build step. Gray rules are edited as
// forms; the API validates every document with the filter's own compiler before it is published.
import { $, $$, api, errorWords, plural, routed, say, session, withConfirmation } from "./common.js";
import { loadConsumers, loadTokenKeys, makeKey, rotateTokenKey } from "./consumers.js";
import { loadCrawler, switchAttack } from "./crawler.js";
import { loadRaw, rawDoc, rawState } from "./filters.js";
import { loadGateways } from "./gateways.js";
import { loadHistory } from "./history.js";
import { actOnRelease, loadReleases, PACES, startRelease } from "./releases.js";
import { grayDocument, loadGray, preview, ruleCard, saveGray } from "./rules.js";
import { loadTraffic } from "./traffic.js";

// ---- wiring ----

// ---- traffic (traffic.js) ----

/** A document's field errors: gray rules named in words (errorWords), other filters by field. */
function rawErrors(filter, errors, doc) {
  return errors.map((e) => (filter === "gray_router" ? errorWords(e, doc) : `${e.field}: ${e.message}`)).join("; ");
}

async function showTraffic() {
  try {
    await loadTraffic(api);
  } catch (e) {
    $("#traffic-summary").textContent = e.message;
  }
}

async function start() {
  const filters = await api("GET", "/api/filters");
  for (const sel of ["#history-filter", "#raw-filter"]) {
    $(sel).replaceChildren(...filters.map((f) => Object.assign(document.createElement("option"), { value: f.filter, textContent: f.filter })));
  }
  $("#history-filter").value = "gray_router";
  $("#raw-filter").value = filters.find((f) => f.filter !== "gray_router")?.filter;
  $("#token").value = session.token;
  const signedIn = (on) => {
    $("#whoami").textContent = on ? "signed in" : "read-only until you sign in";
    $("#sign-out").hidden = !on;
  };
  signedIn(!!session.token);
  $("#sign-out").addEventListener("click", () => {
    session.token = "";
    sessionStorage.removeItem("graywall-token");
    $("#token").value = "";
    signedIn(false);
    say("Signed out: read-only until you sign in again.");
  });
  Object.assign(routed, await api("GET", "/api/targets").catch(() => routed));
  const checks = () => {
    const pace = PACES[$("#rel-pace").value];
    const every = pace.interval_seconds >= 60 ? plural(pace.interval_seconds / 60, "minute") : plural(pace.interval_seconds, "second");
    $("#rel-checks").textContent =
      `Checked every ${every.replace(/^1 /, "")} from Envoy's own numbers (error rate and p99 latency of the new version against stable's); two bad checks in a row send everyone back to stable.`;
  };
  $("#rel-pace").addEventListener("change", checks);
  checks();

  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    session.token = $("#token").value.trim();
    try {
      await api("GET", "/api/session");
      sessionStorage.setItem("graywall-token", session.token);
      signedIn(true);
      say("Signed in.");
    } catch (err) {
      session.token = "";
      sessionStorage.removeItem("graywall-token");
      signedIn(false);
      say(err.status === 401 ? "That access token is not valid: still read-only." : err.message, "error");
    }
  });
  for (const b of $$("nav button")) {
    b.addEventListener("click", async () => {
      say("", ""); // a message belongs to the tab it came from
      for (const x of $$("nav button")) x.classList.toggle("active", x === b);
      for (const s of $$("main > section")) s.hidden = s.id !== `tab-${b.dataset.tab}`;
      if (b.dataset.tab === "history") await loadHistory();
      if (b.dataset.tab === "traffic") await showTraffic();
      if (b.dataset.tab === "gateways") await loadGateways();
      if (b.dataset.tab === "releases") await loadReleases();
      if (b.dataset.tab === "filters") await loadRaw();
      if (b.dataset.tab === "crawler") await loadCrawler();
      if (b.dataset.tab === "consumers") await Promise.all([loadConsumers(), loadTokenKeys()]);
    });
  }
  $("#add-rule").addEventListener("click", () => $("#rules").append(ruleCard({ name: "", target: "canary", match: { headers: [{ name: "", exact: "" }] } })));
  $("#save-rules").addEventListener("click", saveGray);
  $("#new-consumer").addEventListener("submit", (e) => {
    e.preventDefault();
    makeKey($("#consumer-name").value.trim());
  });
  $("#reload-rules").addEventListener("click", loadGray);
  $("#preview").addEventListener("click", preview);
  $("#history-filter").addEventListener("change", loadHistory);
  $("#raw-filter").addEventListener("change", loadRaw);
  $("#rotate-token-key").addEventListener("click", rotateTokenKey);
  $("#attack-on").addEventListener("click", () => switchAttack(true));
  $("#attack-off").addEventListener("click", () => switchAttack(false));
  $("#raw-validate").addEventListener("click", async () => {
    const doc = rawDoc();
    if (!doc) return;
    const filter = $("#raw-filter").value;
    const r = await api("POST", `/api/filters/${filter}/validate`, { doc });
    const warnings = (r.warnings || []).map((w) => `Warning: this ${w.message} (${w.field}).`).join(" ");
    say(r.ok ? `The filter accepts this document.${warnings ? ` ${warnings}` : ""}` : rawErrors(filter, r.errors, doc), r.ok && !warnings ? "ok" : "error");
  });
  $("#raw-save").addEventListener("click", async () => {
    const doc = rawDoc();
    if (!doc) return;
    try {
      const v = await withConfirmation((confirm) => api("PUT", `/api/filters/${$("#raw-filter").value}`, { doc, author: "web UI", confirm }, rawState.version));
      rawState.version = v.version;
      $("#raw-version").textContent = String(v.version);
      say(`Published version ${v.version}.`);
    } catch (e) {
      say(e.errors?.length ? rawErrors($("#raw-filter").value, e.errors, doc) : e.message, "error");
    }
  });
  setInterval(() => !$("#tab-traffic").hidden && showTraffic(), 2000);
  setInterval(() => !$("#tab-gateways").hidden && loadGateways(), 2000);
  setInterval(() => !$("#tab-releases").hidden && loadReleases().catch(() => {}), 2000);
  $("#release-form").addEventListener("submit", startRelease);
  for (const b of $$("#release-current [data-act]")) b.addEventListener("click", () => actOnRelease(b.dataset.act));
  await loadGray();
  // Targets a release can ramp: those the gray rules send users to.
  const targets = new Set(["canary"]);
  const gray = grayDocument();
  for (const r of gray?.rules ?? []) if (r.target && r.target !== (gray.default_target || "stable")) targets.add(r.target);
  $("#rel-target").replaceChildren(...[...targets].map((t) => Object.assign(document.createElement("option"), { value: t, textContent: t })));
}

start().catch((e) => say(e.message, "error"));
