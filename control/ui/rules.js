// The gray release rules tab: the document as forms, preview, publish.
import { $, $$, api, errorWords, fillTargets, routed, say } from "./common.js";

let grayDoc = null; // the loaded document: fields the form does not edit are kept as they are
let grayVersion = 0;

/** The gray document in force, as last loaded. */
export const grayDocument = () => grayDoc;

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

export function ruleCard(rule) {
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

export async function loadGray() {
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

export async function saveGray() {
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

export async function preview() {
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
