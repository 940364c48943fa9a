// graywall-control UI: plain DOM and ES modules, no build step. Gray rules are edited as forms; the API
// validates every document with the filter's own compiler before it is published.
import { lineChart } from "./chart.js";
import { loadTraffic } from "./traffic.js";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
let token = sessionStorage.getItem("graywall-token") || "";
let grayDoc = null; // the loaded document: fields the form does not edit are kept as they are
let grayVersion = 0;
let rawVersion = 0;

/** "1 minute", "5 minutes". */
const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;

/** The targets the gateway routes (GET /api/targets), for the target choices. */
let routed = { targets: ["canary", "stable"], default: "stable" };

/** A select of the routed targets with `value` chosen (kept even if the gateway no longer routes it). */
function fillTargets(select, value) {
  const names = routed.targets.includes(value) || !value ? routed.targets : [...routed.targets, value];
  select.replaceChildren(
    ...names.map((t) =>
      Object.assign(document.createElement("option"), { value: t, textContent: routed.targets.includes(t) ? t : `${t} (not routed by this gateway)` }),
    ),
  );
  select.value = value || routed.default;
}

/**
 * A field error in words, naming the rule: "rules[1].target: no route serves target 'canry'; ..." ->
 * "Rule 2, "testers": no route serves 'canry'; this gateway serves canary and stable".
 */
function errorWords(e, doc) {
  const m = /^rules\[(\d+)\]\.?(.*)$/.exec(e.field || "");
  const message = e.message.replace(/no route serves target '([^']+)'; the gateway routes: (.*)$/, (_, t, list) => {
    const names = list.split(", ");
    return `no route serves '${t}'; this gateway serves ${names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)}` : names[0]}`;
  });
  if (!m) return e.field === "default_target" ? `Everyone else: ${message}` : e.field ? `${e.field}: ${message}` : message;
  const i = Number(m[1]);
  const name = doc?.rules?.[i]?.name;
  const KINDS = {
    headers: "header",
    cookies: "cookie",
    query: "query parameter",
    body: "JSON body field",
    client_ip: "client IP",
    percentage: "share of users",
  };
  const part = m[2]
    .replace(/^match\./, "")
    .replace(/^(headers|cookies|query|body|client_ip|percentage)/, (k) => KINDS[k])
    .replace(/\[(\d+)\]/g, (_, n) => ` ${Number(n) + 1}`)
    .replaceAll(".", " ")
    .replaceAll("_", " ");
  const where = part && part !== "target" ? ` (${part})` : "";
  return `Rule ${i + 1}${name ? `, "${name}"` : ""}${where}: ${message}`;
}

function say(text, kind = "ok") {
  const m = $("#message");
  m.textContent = text;
  m.className = kind;
}

async function api(method, path, body, version) {
  const headers = body === undefined ? {} : { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (version !== undefined) headers["if-match"] = `"${version}"`;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const detail = (data.errors || []).map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ");
    // Fastify's own 4xx replies carry the reason in `message` ("body/doc must be object").
    const reason = detail || data.message;
    const err = new Error(reason ? `${data.error}: ${reason}` : data.error || `HTTP ${r.status}`);
    err.status = r.status;
    err.errors = data.errors || [];
    err.needsConfirmation = data.needs_confirmation === true;
    throw err;
  }
  return data;
}

/**
 * A change the API holds back because it could lock people out: says what it would do in plain words and
 * sends it again, confirmed, only if the person agrees. `send(confirm)` makes the API call.
 */
async function withConfirmation(send) {
  try {
    return await send(false);
  } catch (e) {
    if (!e.needsConfirmation) throw e;
    const risks = e.errors.map((x) => `- ${x.message} (${x.field})`).join("\n");
    if (!confirm(`Warning: this change could lock people out:\n${risks}\n\nPublish it anyway?`)) {
      const kept = new Error("Not published: nothing changed.");
      kept.status = 0;
      throw kept;
    }
    return send(true);
  }
}

// ---- gray rules: document <-> form ----

const OPS = ["exact", "prefix", "suffix", "contains", "one_of", "present"];

function conditionRow(kind, item) {
  const row = $("#condition-template").content.firstElementChild.cloneNode(true);
  $(".c-kind", row).value = kind;
  if (kind === "client_ip") {
    $(".c-value", row).value = item.join(", ");
  } else if (kind === "percentage") {
    setPercent(row, item.value ?? 0);
    $(".c-hash", row).value = item.hash_on || "header";
    $(".c-name", row).value = item.name || "";
    $(".c-salt", row).value = item.salt || "";
  } else {
    $(".c-name", row).value = kind === "body" ? item.path : item.name;
    const op = OPS.find((o) => o in item) || "exact";
    if (op === "present") $(".c-op", row).value = item.present ? "present" : "absent";
    else {
      $(".c-op", row).value = op;
      $(".c-value", row).value = op === "one_of" ? item.one_of.join(", ") : item[op];
    }
  }
  wireCondition(row);
  return row;
}

function setPercent(row, v) {
  $(".c-percent", row).value = String(Math.round(v));
  $(".c-percent-num", row).value = String(v);
  $(".split-bar", row).style.width = `${v}%`;
}

function wireCondition(row) {
  const sync = () => {
    const kind = $(".c-kind", row).value;
    const op = $(".c-op", row).value;
    // The bar shows the share the number says from the start, not only after an edit.
    if (kind === "percentage") setPercent(row, Number($(".c-percent-num", row).value));
    $(".c-pct", row).hidden = kind !== "percentage";
    $(".c-op", row).hidden = kind === "percentage" || kind === "client_ip";
    $(".c-name", row).hidden = kind === "client_ip" || (kind === "percentage" && $(".c-hash", row).value === "client_ip");
    $(".c-name", row).placeholder = kind === "body" ? "field path, e.g. user.tier" : kind === "percentage" ? "header or cookie name" : "name";
    $(".c-value", row).hidden = kind === "percentage" || op === "present" || op === "absent";
    $(".c-value", row).placeholder = kind === "client_ip" ? "CIDRs, comma-separated" : op === "one_of" ? "a, b, c" : "value";
  };
  $(".c-kind", row).addEventListener("change", sync);
  $(".c-op", row).addEventListener("change", sync);
  $(".c-hash", row).addEventListener("change", sync);
  $(".c-percent", row).addEventListener("input", (e) => setPercent(row, Number(e.target.value)));
  $(".c-percent-num", row).addEventListener("input", (e) => setPercent(row, Number(e.target.value)));
  $(".c-delete", row).addEventListener("click", () => row.remove());
  sync();
}

function ruleCard(rule) {
  const card = $("#rule-template").content.firstElementChild.cloneNode(true);
  $(".r-name", card).value = rule.name || "";
  fillTargets($(".r-target", card), rule.target || routed.targets.find((t) => t !== routed.default) || "canary");
  const list = $(".conditions", card);
  const m = rule.match || {};
  for (const kind of ["headers", "cookies", "query", "body"]) for (const item of m[kind] || []) list.append(conditionRow(kind, item));
  if (m.client_ip) list.append(conditionRow("client_ip", m.client_ip));
  if (m.percentage) list.append(conditionRow("percentage", m.percentage));
  $(".r-add-condition", card).addEventListener("click", () => list.append(conditionRow("headers", { name: "", exact: "" })));
  $(".r-delete", card).addEventListener("click", () => {
    if (confirm(`Delete rule "${$(".r-name", card).value}"? It takes effect when you save and publish.`)) card.remove();
  });
  $(".r-up", card).addEventListener("click", () => card.previousElementSibling && card.parentNode.insertBefore(card, card.previousElementSibling));
  $(".r-down", card).addEventListener("click", () => card.nextElementSibling && card.parentNode.insertBefore(card.nextElementSibling, card));
  return card;
}

function renderGray(doc) {
  fillTargets($("#default-target"), doc.default_target || routed.default);
  const rules = $("#rules");
  rules.replaceChildren(...(doc.rules || []).map(ruleCard));
  $("#gray-version").textContent = String(grayVersion);
}

function readCondition(row, match) {
  const kind = $(".c-kind", row).value;
  const name = $(".c-name", row).value.trim();
  const value = $(".c-value", row).value;
  const list = (s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean);
  if (kind === "client_ip") {
    match.client_ip = [...(match.client_ip || []), ...list(value)];
    return;
  }
  if (kind === "percentage") {
    const p = { value: Number($(".c-percent-num", row).value), hash_on: $(".c-hash", row).value };
    if (p.hash_on !== "client_ip") p.name = name;
    const salt = $(".c-salt", row).value.trim();
    if (salt) p.salt = salt;
    match.percentage = p;
    return;
  }
  const op = $(".c-op", row).value;
  const test = kind === "body" ? { path: name } : { name };
  if (op === "present" || op === "absent") test.present = op === "present";
  else if (op === "one_of") test.one_of = list(value);
  else test[op] = value;
  match[kind] = match[kind] || [];
  match[kind].push(test);
}

function formDoc() {
  const doc = { ...grayDoc, default_target: $("#default-target").value };
  doc.rules = $$(".rule", $("#rules")).map((card) => {
    const match = {};
    for (const row of $$(".condition", card)) readCondition(row, match);
    return { name: $(".r-name", card).value.trim(), target: $(".r-target", card).value, match };
  });
  return doc;
}

function markInvalid(errors) {
  for (const c of $$(".rule")) c.classList.remove("invalid");
  for (const e of errors) {
    const m = /^rules\[(\d+)\]/.exec(e.field || "");
    if (m) $$(".rule")[Number(m[1])]?.classList.add("invalid");
  }
}

async function loadGray() {
  const r = await api("GET", "/api/filters/gray_router");
  grayDoc = r.doc;
  grayVersion = r.version;
  renderGray(grayDoc);
}

/** What publishing `doc` does, in plain words, for the confirmation. */
function summarize(doc) {
  const lines = (doc.rules || []).map((r) => {
    const p = r.match?.percentage;
    if (p) {
      const by = p.hash_on === "client_ip" ? "client IP" : `${p.hash_on || "header"} ${p.name}`;
      const more = Object.keys(r.match).length > 1 ? " among requests matching its other conditions" : "";
      return `• about ${p.value}% of users (by ${by}) will go to ${r.target}${more} (rule "${r.name}")`;
    }
    return `• requests matching rule "${r.name}" will go to ${r.target}`;
  });
  lines.push(`• everyone else goes to ${doc.default_target || "stable"}`);
  return `Publish these rules to Envoy now?\n\n${lines.join("\n")}`;
}

async function saveGray() {
  try {
    const doc = formDoc();
    if (!confirm(summarize(doc))) return;
    const v = await api("PUT", "/api/filters/gray_router", { doc, author: "web UI" }, grayVersion);
    // The stored document may differ (a new percentage rule gets its salt fixed): show what is in force.
    await loadGray();
    $("#gray-version").textContent = String(v.version);
    markInvalid([]);
    say(`Published version ${v.version}. Envoy picks it up in about a second.`);
  } catch (e) {
    markInvalid(e.errors || []);
    if (e.status === 401) say("Sign in with the access token to publish changes.", "error");
    else if (e.errors?.length) say(e.errors.map((x) => errorWords(x, formDoc())).join(" "), "error");
    else if (e.status === 409) say(`${e.message}. Press "Discard changes" to load the newer rules (your edits are still in the form until then).`, "error");
    else say(e.message, "error");
  }
}

async function preview() {
  const headers = {};
  for (const line of $("#pv-headers").value.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const request = { headers, cookie: $("#pv-cookie").value, path: $("#pv-path").value || "/", ip: $("#pv-ip").value.trim(), body: $("#pv-body").value };
  try {
    const r = await api("POST", "/api/preview", { doc: formDoc(), request });
    $("#pv-result").textContent = r.error
      ? `Rules have an error: ${r.error}`
      : `→ ${r.target}${r.rule ? ` (rule "${r.rule}")` : " (no rule matched: default)"}`;
  } catch (e) {
    $("#pv-result").textContent = e.message;
  }
}

// ---- history ----

/** A version's changes in words: a rule added, removed or moved is named; values are shown bare. */
function describe(changes, total) {
  const ul = document.createElement("ul");
  ul.className = "diff";
  const fmt = (v) => (v === undefined ? "(none)" : typeof v === "string" ? v : JSON.stringify(v));
  // "rules" -> "rule", "deny" -> "deny"; a rule names its target.
  const what = (c, v) => (c.path === "rules" && v && typeof v === "object" ? `rule "${v.name}" (to ${v.target})` : c.item ? `"${c.item}"` : fmt(v));
  const field = (c) => {
    const at = c.path.replace(/^rules\[\d+\]\.?/, "");
    return c.item ? `${c.path.startsWith("rules[") ? "rule" : "item"} "${c.item}"${at ? `: ${at}` : ""}` : c.path;
  };
  for (const c of changes.slice(0, 8)) {
    const li = document.createElement("li");
    if (c.kind === "added") li.textContent = `added ${what(c, c.after)}${c.path === "rules" ? "" : ` to ${c.path}`}`;
    else if (c.kind === "removed") li.textContent = `removed ${what(c, c.before)}${c.path === "rules" ? "" : ` from ${c.path}`}`;
    else if (c.kind === "moved") li.textContent = `moved ${c.path === "rules" ? "rule " : ""}${c.item} from position ${c.from + 1} to ${c.to + 1}`;
    else if (c.before === undefined) li.textContent = `${field(c)}: set to ${fmt(c.after)}`;
    else if (c.after === undefined) li.textContent = `${field(c)}: removed (was ${fmt(c.before)})`;
    else li.textContent = `${field(c)}: ${fmt(c.before)} → ${fmt(c.after)}`;
    ul.append(li);
  }
  if (total > 8) ul.append(Object.assign(document.createElement("li"), { textContent: `and ${(total - 8).toLocaleString("en")} more` }));
  return ul;
}

async function loadHistory() {
  const filter = $("#history-filter").value;
  const versions = await api("GET", `/api/filters/${filter}/versions?changes=true&limit=50`);
  const current = versions[0]?.version ?? 0;
  const rows = versions.map((v) => {
    const tr = document.createElement("tr");
    const cells = [`${v.version}${v.restoredFrom ? ` (restores ${v.restoredFrom})` : ""}`, new Date(v.time).toLocaleString(), v.author];
    for (const text of cells) tr.append(Object.assign(document.createElement("td"), { textContent: text }));
    const what = document.createElement("td");
    what.append(
      v.version === 1 || (v.changes_total === 0 && !v.restoredFrom)
        ? Object.assign(document.createElement("span"), { textContent: "first version" })
        : describe(v.changes, v.changes_total),
    );
    tr.append(what);
    const act = document.createElement("td");
    if (v.version !== current) {
      const b = Object.assign(document.createElement("button"), { textContent: `Restore version ${v.version}`, type: "button" });
      b.addEventListener("click", async () => {
        if (!confirm(`Restore version ${v.version} of ${filter}? It becomes version ${current + 1} and is published to Envoy at once.`)) return;
        try {
          const r = await withConfirmation((confirm) =>
            api("POST", `/api/filters/${filter}/rollback`, { version: v.version, author: "web UI", confirm }, current),
          );
          say(`Restored version ${v.version} as version ${r.version}.`);
          await loadHistory();
          if (filter === "gray_router") await loadGray();
        } catch (e) {
          say(e.status === 401 ? "Sign in with the access token to restore versions." : e.message, "error");
        }
      });
      act.append(b);
    }
    tr.append(act);
    return tr;
  });
  $("#history tbody").replaceChildren(...rows);
}

// ---- releases ----

const PACES = {
  careful: { steps: [1, 5, 25, 50, 100], hold_seconds: 600, interval_seconds: 60 },
  normal: { steps: [1, 5, 25, 50, 100], hold_seconds: 300, interval_seconds: 60 },
  fast: { steps: [10, 50, 100], hold_seconds: 60, interval_seconds: 10 },
};
const STATUS_WORDS = { running: "running", paused: "paused", promoted: "promoted: done", rolled_back: "rolled back", aborted: "aborted" };
let shownRelease = null;

function drawRelease(r) {
  shownRelease = r.id;
  $("#release-current").hidden = false;
  $("#rel-title").textContent = `Release ${r.id}: ${r.spec.target}, step ${Math.max(r.step + 1, 1)} of ${r.spec.steps.length} (${r.spec.steps.join("% → ")}%)`;
  // Why it ended: the event that set the status (a webhook note may come after it).
  const last = [...r.events].reverse().find((e) => ["rolled back", "promoted", "aborted"].includes(e.action)) ?? r.events.at(-1);
  // While it runs, the last check in words (waiting for traffic, say); once it ended, why it ended.
  const lastCheck = r.samples.at(-1);
  const live = r.status === "running" || r.status === "paused";
  $("#rel-status").textContent = `${STATUS_WORDS[r.status]} at ${r.share}% of users. ${
    live ? (lastCheck ? `Last check: ${lastCheck.reason}` : `First check within ${r.spec.interval_seconds} s.`) : last.reason
  }`;
  $("#rel-status").className = r.status;
  for (const b of $$("#release-current [data-act]")) {
    const act = b.dataset.act;
    b.disabled =
      !(r.status === "running" || r.status === "paused") || (act === "pause" && r.status !== "running") || (act === "resume" && r.status !== "paused");
  }
  const t = (s) => Date.parse(s.time);
  lineChart($("#chart-share"), [{ color: "#d9822b", points: r.samples.map((s) => [t(s), s.share]) }], { unit: "%" });
  lineChart($("#chart-errors"), [
    { color: "#d9822b", points: r.samples.map((s) => [t(s), s.canary.error_rate === null ? null : 100 * s.canary.error_rate]) },
    { color: "#3e6fb0", points: r.samples.map((s) => [t(s), s.stable.error_rate === null ? null : 100 * s.stable.error_rate]) },
  ]);
  lineChart($("#chart-p99"), [
    { color: "#d9822b", points: r.samples.map((s) => [t(s), s.canary.p99_ms]) },
    { color: "#3e6fb0", points: r.samples.map((s) => [t(s), s.stable.p99_ms]) },
  ]);
  const td = (text) => Object.assign(document.createElement("td"), { textContent: text });
  $("#rel-events tbody").replaceChildren(
    ...[...r.events].reverse().map((e) => {
      const tr = document.createElement("tr");
      tr.append(td(new Date(e.time).toLocaleString()), td(e.who), td(e.action + (e.version ? ` (version ${e.version})` : "")), td(`${e.share}%`), td(e.reason));
      return tr;
    }),
  );
}

async function loadReleases() {
  const list = await api("GET", "/api/releases");
  const td = (text) => Object.assign(document.createElement("td"), { textContent: text });
  $("#releases tbody").replaceChildren(
    ...list.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.id = r.id;
      tr.append(td(r.id), td(r.spec.target), td(STATUS_WORDS[r.status]), td(`${r.share}%`), td(new Date(r.created).toLocaleString()));
      tr.addEventListener("click", async () => drawRelease(await api("GET", `/api/releases/${r.id}`)));
      return tr;
    }),
  );
  const id = shownRelease ?? list.find((r) => r.status === "running" || r.status === "paused")?.id ?? list[0]?.id;
  if (id) drawRelease(await api("GET", `/api/releases/${id}`));
}

async function startRelease(e) {
  e.preventDefault();
  if (!token) return say("Sign in with the access token to start a release.", "error");
  const pace = PACES[$("#rel-pace").value];
  const target = $("#rel-target").value;
  const body = {
    target,
    ...pace,
    hash_on: "cookie",
    name: $("#rel-cookie").value.trim(),
    limits: { max_error_rate_increase: Number($("#rel-errors").value) / 100, max_p99_ratio: Number($("#rel-p99").value) },
    author: "web UI",
  };
  const plan = `Start releasing ${target}? ${pace.steps[0]}% of users (by cookie ${body.name}) go to ${target} now, then ${pace.steps.slice(1).join("%, ")}% as each step stays healthy for ${plural(pace.hold_seconds / 60, "minute")}. If ${target} shows more than ${$("#rel-errors").value}% more errors than stable, or gets ${body.limits.max_p99_ratio}× slower, everyone goes back to stable by itself.`;
  if (!confirm(plan)) return;
  try {
    const r = await api("POST", "/api/releases", body);
    say(`Release ${r.id} started: ${r.share}% of users on ${target}.`);
    shownRelease = r.id;
    await loadReleases();
  } catch (err) {
    say(err.message, "error");
  }
}

const ACT_QUESTIONS = {
  pause: (r) => `Pause release ${r}? Users stay where they are; nothing moves until you resume.`,
  resume: (r) => `Resume release ${r}? Checks start again, and the share grows while the new version stays healthy.`,
  promote: (r) => `Promote release ${r}? Every user with the cookie goes to the new version now.`,
  abort: (r) => `Abort release ${r}? Every user goes back to stable now.`,
};

async function actOnRelease(act) {
  if (!shownRelease) return;
  if (!token) return say("Sign in with the access token to change a release.", "error");
  if (!confirm(ACT_QUESTIONS[act](shownRelease))) return;
  try {
    drawRelease(await api("POST", `/api/releases/${shownRelease}/${act}`, { author: "web UI" }));
    say(`Release ${shownRelease}: ${act} done.`);
    await loadReleases();
  } catch (err) {
    say(err.message, "error");
  }
}

// ---- gateways (the fleet over gRPC ECDS) ----

/** "ip_list.1,crawler_score.1,..." -> "ip_list v1 · crawler_score v1 · ..." */
function versionText(v) {
  return v
    ? v
        .split(",")
        .map((p) => p.replace(/\.(\d+)$/, " v$1"))
        .join(" · ")
    : "nothing yet";
}

async function loadGateways() {
  try {
    const r = await api("GET", "/api/gateways");
    $("#fleet-version").textContent = r.fleet
      ? `Current version: ${versionText(r.version)}`
      : "Fleet delivery is off: this service writes the configuration for one Envoy on this host (start it with an xDS port to serve a fleet).";
    const rows = r.gateways.map((g) => {
      const tr = document.createElement("tr");
      const td = (text, cls) => Object.assign(document.createElement("td"), { textContent: text, className: cls || "" });
      let status = "up to date";
      let cls = "";
      if (g.rejected) {
        status = `refused ${versionText(g.rejected.version)}: ${g.rejected.error}`;
        cls = "error";
      } else if (g.pending) status = `receiving ${versionText(g.pending)}`;
      else if (g.version !== r.version) status = "behind";
      tr.append(td(`${g.node} (${g.cluster})`), td(g.connected ? "yes" : `no, last seen ${g.lastSeen}`), td(versionText(g.version)), td(status, cls));
      tr.dataset.node = g.node;
      return tr;
    });
    $("#gateways tbody").replaceChildren(...rows);
  } catch (e) {
    $("#gateways tbody").replaceChildren(Object.assign(document.createElement("tr"), { textContent: e.message }));
  }
}

// ---- crawler defence, in words ----

let crawlerVersion;

/** One sentence per setting of the crawler document in force (defaults as docs/crawler_score.md gives them). */
function crawlerSentences(doc) {
  const t = { tag: 30, challenge: 80, block: 95, ...(doc.thresholds || {}) };
  const ch = doc.challenge || {};
  const id = doc.client_id || {};
  const out = [
    `Every request gets a bot score from 0 to 100 (its headers and its client's behaviour). At ${t.tag} or more it is tagged for the upstream; at ${t.challenge} or more it is challenged; at ${t.block} or more it is blocked.`,
    ch.enabled === false
      ? "A challenged request gets a plain 429 asking it to slow down (the proof-of-work page is off)."
      : `A challenged page view gets a proof-of-work page (difficulty ${ch.difficulty ?? 14}: a browser solves it in about a second) and then passes for ${plural(Math.round((ch.expiry_s ?? 3600) / 60), "minute")}; other requests get a plain 429.`,
    id.enabled === false
      ? "Behaviour is judged per address: people behind one address share a history."
      : "Each browser gets a signed id cookie, so behaviour is judged per browser and people behind one address never pay for each other.",
  ];
  const pol = { tools: "challenge", headless: "challenge", declared_bots: "tag", browsers: "allow", api: "allow", ...(doc.policy || {}) };
  const act = { allow: "are judged by their score", tag: "are tagged for the upstream", challenge: "are challenged", block: "are blocked" };
  out.push(
    `On an HTML page view, programs (HTTP libraries, tools, no user agent) ${act[pol.tools]}; headless browsers ${act[pol.headless]}; declared bots ${act[pol.declared_bots]}; browsers ${act[pol.browsers]}. Under ${(doc.api_prefixes || ["/api/"]).join(", ")} every client ${act[pol.api]}. Feed readers are never challenged.`,
  );
  const traps = doc.honeypot_paths || [];
  if (traps.length > 0)
    out.push(`A client that asks for ${traps.join(", ")} is blocked for ${plural(Math.round((doc.behaviour?.honeypot_ttl_ms ?? 600000) / 60000), "minute")}.`);
  if ((doc.good_bots || []).length > 0)
    out.push(
      `Verified bots (${doc.good_bots.map((g) => g.name).join(", ")}) pass from their published address ranges; their user agent from anywhere else is an impostor.`,
    );
  out.push(
    doc.fleet?.cluster
      ? `Gateways add up their counts through the ratelimit service (Envoy cluster ${doc.fleet.cluster}): a slow crawl split across gateways, or one clearance used on several, is seen as one. A gateway without that cluster counts alone.`
      : "Each gateway counts on its own: a crawl split across gateways is judged in parts.",
  );
  return out;
}

function attackWords(doc) {
  const ua = doc.under_attack || {};
  const auto =
    ua.auto === false
      ? "It does not switch on by itself."
      : `It switches on by itself for ${plural(Math.round((ua.duration_ms ?? 900000) / 60000), "minute")} when the site gets more than ${ua.multiple ?? 5} times its usual requests per second (and over ${ua.min_rps ?? 50}).`;
  if (ua.until_ms && ua.until_ms > Date.now()) {
    return `On until ${new Date(ua.until_ms).toLocaleTimeString()}: every page view without a clearance gets the challenge (feeds and API paths excepted). ${auto}`;
  }
  return `Off. ${auto} While on, every page view without a clearance gets the challenge; feeds and API paths never do.`;
}

async function switchAttack(on) {
  try {
    if (on) await api("POST", "/api/crawler/under-attack", { minutes: Number($("#attack-minutes").value), author: "web UI" });
    else await api("DELETE", "/api/crawler/under-attack");
    say(on ? "Under-attack mode is on." : "Under-attack mode is off.");
    await loadCrawler();
  } catch (e) {
    say(e.message, "error");
  }
}

async function loadCrawler() {
  const r = await api("GET", "/api/filters/crawler_score");
  $("#attack-state").textContent = attackWords(r.doc);
  crawlerVersion = r.version;
  $("#crawler-version").textContent = String(r.version);
  $("#crawler-policy").replaceChildren(...crawlerSentences(r.doc).map((s) => Object.assign(document.createElement("li"), { textContent: s })));
  const rows = [
    ["challenge", "clearances (the challenge page)"],
    ["client_id", "client ids"],
  ].map(([section, what]) => {
    const s = r.doc[section] || {};
    const tr = document.createElement("tr");
    const state =
      s.enabled === false ? "off" : s.secret?.set ? `set${s.previous_secret?.set ? "; the one before it is still accepted" : ""}` : "this gateway's own";
    tr.append(Object.assign(document.createElement("td"), { textContent: what }), Object.assign(document.createElement("td"), { textContent: state }));
    const cell = document.createElement("td");
    if (s.enabled !== false) {
      const b = Object.assign(document.createElement("button"), { type: "button", textContent: "Rotate", className: "rotate" });
      b.dataset.section = section;
      b.addEventListener("click", async () => {
        try {
          const v = await api("POST", `/api/filters/crawler_score/secrets/${section}/rotate`, { author: "web UI" }, crawlerVersion);
          say(`Rotated: version ${v.version} signs ${what} with a new secret.`);
          await loadCrawler();
        } catch (e) {
          say(e.message, "error");
        }
      });
      cell.append(b);
    }
    tr.append(cell);
    return tr;
  });
  $("#crawler-secrets tbody").replaceChildren(...rows);
}

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

async function makeKey(name) {
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

async function loadConsumers(keepKey = false) {
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

// ---- other filters, as JSON ----

async function loadRaw() {
  const r = await api("GET", `/api/filters/${$("#raw-filter").value}`);
  rawVersion = r.version;
  $("#raw-version").textContent = String(r.version);
  $("#raw-doc").value = JSON.stringify(r.doc, null, 2);
}

function rawDoc() {
  try {
    return JSON.parse($("#raw-doc").value);
  } catch (e) {
    say(`Not valid JSON: ${e.message}`, "error");
    return null;
  }
}

// ---- wiring ----

// ---- traffic (traffic.js) ----

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
  $("#token").value = token;
  const signedIn = (on) => {
    $("#whoami").textContent = on ? "signed in" : "read-only until you sign in";
    $("#sign-out").hidden = !on;
  };
  signedIn(!!token);
  $("#sign-out").addEventListener("click", () => {
    token = "";
    sessionStorage.removeItem("graywall-token");
    $("#token").value = "";
    signedIn(false);
    say("Signed out: read-only until you sign in again.");
  });
  routed = await api("GET", "/api/targets").catch(() => routed);
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
    token = $("#token").value.trim();
    try {
      await api("GET", "/api/session");
      sessionStorage.setItem("graywall-token", token);
      signedIn(true);
      say("Signed in.");
    } catch (err) {
      token = "";
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
      if (b.dataset.tab === "consumers") await loadConsumers();
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
  $("#attack-on").addEventListener("click", () => switchAttack(true));
  $("#attack-off").addEventListener("click", () => switchAttack(false));
  $("#raw-validate").addEventListener("click", async () => {
    const doc = rawDoc();
    if (!doc) return;
    const r = await api("POST", `/api/filters/${$("#raw-filter").value}/validate`, { doc });
    const warnings = (r.warnings || []).map((w) => `Warning: this ${w.message} (${w.field}).`).join(" ");
    say(
      r.ok ? `The filter accepts this document.${warnings ? ` ${warnings}` : ""}` : r.errors.map((e) => `${e.field}: ${e.message}`).join("; "),
      r.ok && !warnings ? "ok" : "error",
    );
  });
  $("#raw-save").addEventListener("click", async () => {
    const doc = rawDoc();
    if (!doc) return;
    try {
      const v = await withConfirmation((confirm) => api("PUT", `/api/filters/${$("#raw-filter").value}`, { doc, author: "web UI", confirm }, rawVersion));
      rawVersion = v.version;
      $("#raw-version").textContent = String(v.version);
      say(`Published version ${v.version}.`);
    } catch (e) {
      say(e.message, "error");
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
  for (const r of grayDoc?.rules ?? []) if (r.target && r.target !== (grayDoc.default_target || "stable")) targets.add(r.target);
  $("#rel-target").replaceChildren(...[...targets].map((t) => Object.assign(document.createElement("option"), { value: t, textContent: t })));
}

start().catch((e) => say(e.message, "error"));
