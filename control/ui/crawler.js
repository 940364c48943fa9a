// The Crawler defence tab: the rules in force in words, the under-attack switch, secret rotation.
import { $, api, plural, say } from "./common.js";

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

export async function switchAttack(on) {
  try {
    if (on) await api("POST", "/api/crawler/under-attack", { minutes: Number($("#attack-minutes").value), author: "web UI" });
    else await api("DELETE", "/api/crawler/under-attack");
    say(on ? "Under-attack mode is on." : "Under-attack mode is off.");
    await loadCrawler();
  } catch (e) {
    say(e.message, "error");
  }
}

export async function loadCrawler() {
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
