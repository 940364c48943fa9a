// The Traffic tab: every gateway's counters over the last hour (GET /api/traffic), in words, charts with
// time axes and tables: per stage what it allowed, tagged, challenged, blocked or limited; the share of
// requests each gray target got; why requests were refused; the most refused paths.
import { lineChart } from "./chart.js";

const $ = (sel) => document.querySelector(sel);
const COLORS = ["#d9822b", "#3e6fb0", "#067647", "#b42318", "#7c3aed", "#0e7490", "#a16207"];

const pct = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(part / whole < 0.1 ? 1 : 0)}%` : "0%");
const num = (v) => Math.round(v).toLocaleString("en");
const perSecond = (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(v >= 1 ? 1 : 2));

/** What each stage did: [stage words, what, series name]. */
const ROWS = [
  ["Access", "refused", "access_denied"],
  ["IP lists", "allowed", "ip_list_allowed"],
  ["IP lists", "denied", "ip_list_denied"],
  ["Crawler defence", "passed", "crawler_passed"],
  ["Crawler defence", "tagged (sent on with a bot score)", "crawler_tagged"],
  ["Crawler defence", "challenged", "crawler_challenged"],
  ["Crawler defence", "blocked", "crawler_blocked"],
  ["Rate limits", "allowed", "rate_limiter_allowed"],
  ["Rate limits", "limited (429)", "rate_limiter_limited"],
];

function cells(tr, ...texts) {
  for (const t of texts) tr.append(Object.assign(document.createElement("td"), { textContent: t }));
  return tr;
}

/** The hour in one or two sentences. */
function summary(v) {
  const t = v.totals;
  if (v.gateways === 0) return "No gateway has answered yet: the numbers start with the first reading of Envoy's admin.";
  const refused = t.access_denied + t.ip_list_denied + t.crawler_challenged + t.crawler_blocked + t.rate_limiter_limited;
  if (t.requests === 0) return `No requests in the last hour (${v.gateways === 1 ? "one gateway" : `${v.gateways} gateways`}).`;
  const targets = Object.keys(v.targets);
  const routed = targets.reduce((a, k) => a + (t[`routed_${k}`] ?? 0), 0);
  const split = targets.length > 0 && routed > 0 ? ` Gray routing sent ${targets.map((k) => `${pct(t[`routed_${k}`], routed)} to ${k}`).join(", ")}.` : "";
  return (
    `In the last hour ${v.gateways === 1 ? "the gateway" : `${v.gateways} gateways`} took ${num(t.requests)} requests and refused ${pct(refused, t.requests)} of them: ` +
    `the crawler defence challenged ${num(t.crawler_challenged)} and blocked ${num(t.crawler_blocked)}, rate limits answered ${num(t.rate_limiter_limited)} with 429, ` +
    `access and IP lists refused ${num(t.access_denied + t.ip_list_denied)}.${split}`
  );
}

export async function loadTraffic(api) {
  const v = await api("GET", "/api/traffic");
  $("#traffic-summary").textContent = summary(v);
  const range = [v.time[0], v.time.at(-1) + v.bucket_s * 1000];
  const line = (name, color, label) => ({ color, label, points: v.time.map((t, i) => [t, v.series[name][i]]) });
  const refusedSeries = [
    line("requests", "#3e6fb0", "all requests"),
    line("crawler_challenged", "#d9822b", "challenged"),
    line("crawler_blocked", "#b42318", "blocked"),
    line("rate_limiter_limited", "#7c3aed", "limited"),
    {
      color: "#0e7490",
      label: "access and IP lists refused",
      points: v.time.map((t, i) => [t, v.series.access_denied[i] + v.series.ip_list_denied[i]]),
    },
  ];
  lineChart($("#chart-traffic"), refusedSeries, { unit: "/s", range, empty: "no requests in the last hour" });
  legend($("#legend-traffic"), refusedSeries);
  const crawler = [
    line("crawler_passed", "#067647", "passed"),
    line("crawler_tagged", "#a16207", "tagged"),
    line("crawler_challenged", "#d9822b", "challenged"),
    line("crawler_blocked", "#b42318", "blocked"),
  ];
  lineChart($("#chart-crawler"), crawler, { unit: "/s", range, empty: "no requests in the last hour" });
  legend($("#legend-crawler"), crawler);
  const names = Object.keys(v.targets);
  const shares = names.map((k, n) => ({
    color: COLORS[n % COLORS.length],
    label: k,
    points: v.time.map((t, i) => {
      const all = names.reduce((a, x) => a + v.targets[x][i], 0);
      return [t, all > 0 ? (100 * v.targets[k][i]) / all : null];
    }),
  }));
  lineChart($("#chart-targets"), shares, { unit: "%", range, empty: "no gray routing in the last hour" });
  legend($("#legend-targets"), shares);

  // Per stage: the last minute as a rate, the hour as a count.
  const lastMinute = (name) => {
    const xs = v.series[name].slice(-6);
    return xs.reduce((a, x) => a + x, 0) / xs.length;
  };
  $("#traffic-stages tbody").replaceChildren(
    ...ROWS.map(([stage, what, name]) => cells(document.createElement("tr"), stage, what, `${perSecond(lastMinute(name))} a second`, num(v.totals[name]))),
  );
  const STAGE = { access: "Access", ip_list: "IP lists", crawler_score: "Crawler defence", rate_limiter: "Rate limits" };
  $("#traffic-reasons tbody").replaceChildren(
    ...(v.reasons.length
      ? v.reasons.map((r) => cells(document.createElement("tr"), STAGE[r.stage] ?? r.stage, r.what, num(r.count)))
      : [cells(document.createElement("tr"), "Nothing was refused or flagged in the last hour.")]),
  );
  $("#traffic-paths tbody").replaceChildren(
    ...(v.paths === null
      ? [cells(document.createElement("tr"), "graywall-control reads no access log (npm start gives it the gateway's).")]
      : v.paths.length
        ? v.paths.map((p) => cells(document.createElement("tr"), p.path, STAGE[p.stage] ?? p.stage, p.what, num(p.count)))
        : [cells(document.createElement("tr"), "No refused requests in the access log in the last hour.")]),
  );
}

function legend(el, series) {
  el.replaceChildren(
    ...series.map((s) => {
      const span = document.createElement("span");
      span.className = "key";
      const dot = document.createElement("i");
      dot.dataset.color = s.color;
      span.append(dot, s.label);
      return span;
    }),
  );
  // Colours through the CSSOM (the page's CSP allows no inline style attributes).
  for (const i of el.querySelectorAll("i")) i.style.background = i.dataset.color;
}
