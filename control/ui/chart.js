// Line charts in SVG with a time axis: series of [time (ms), value | null], y from 0 to the largest value.
// Used by the Releases and Traffic tabs.

const W = 600;
const H = 170;
const LEFT = 40;
const RIGHT = 10;
const TOP = 8;
const BOTTOM = 22;

const hhmm = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** A short number for an axis: 0.25, 3, 1.2k. */
function short(v) {
  if (v >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  return String(+v.toFixed(v < 10 ? 2 : 0));
}

/**
 * Draws `series` ({color, points}) into `svg`: time labels under the x axis (4-6 of them, hours and
 * minutes), the largest value and the middle on the y axis (`unit` after them), or `empty` when there is
 * nothing to show. `range` fixes the time axis (e.g. the last hour) instead of the points' own span.
 */
export function lineChart(svg, series, { unit = "", empty = "no samples yet", range } = {}) {
  const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  if (all.length === 0) {
    svg.innerHTML = `<text x="10" y="80" fill="#6b7280">${empty}</text>`;
    return;
  }
  const t0 = range ? range[0] : Math.min(...all.map((p) => p[0]));
  const t1 = range ? range[1] : Math.max(...all.map((p) => p[0]), t0 + 1000);
  const top = Math.max(...all.map((p) => p[1]), 1e-9);
  const x = (t) => LEFT + ((t - t0) / (t1 - t0)) * (W - LEFT - RIGHT);
  const y = (v) => H - BOTTOM - (v / top) * (H - TOP - BOTTOM);
  const parts = [
    `<line x1="${LEFT}" y1="${H - BOTTOM}" x2="${W - RIGHT}" y2="${H - BOTTOM}" stroke="#cfd4dc"/>`,
    `<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${H - BOTTOM}" stroke="#cfd4dc"/>`,
    `<text x="${LEFT - 4}" y="${TOP + 9}" font-size="11" fill="#6b7280" text-anchor="end">${short(top)}${unit}</text>`,
    `<text x="${LEFT - 4}" y="${(TOP + H - BOTTOM) / 2 + 4}" font-size="11" fill="#6b7280" text-anchor="end">${short(top / 2)}${unit}</text>`,
    `<text x="${LEFT - 4}" y="${H - BOTTOM + 4}" font-size="11" fill="#6b7280" text-anchor="end">0</text>`,
  ];
  // Time ticks on whole minutes, 4-6 of them across the span.
  const span = t1 - t0;
  const step = [60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3].find((s) => span / s <= 6) ?? 43200e3;
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    parts.push(`<line x1="${x(t)}" y1="${H - BOTTOM}" x2="${x(t)}" y2="${H - BOTTOM + 4}" stroke="#9aa3af"/>`);
    parts.push(`<text class="tick" x="${x(t)}" y="${H - 6}" font-size="11" fill="#6b7280" text-anchor="middle">${hhmm(t)}</text>`);
  }
  if (span < 60e3) parts.push(`<text class="tick" x="${W - RIGHT}" y="${H - 6}" font-size="11" fill="#6b7280" text-anchor="end">${hhmm(t1)}</text>`);
  for (const s of series) {
    const pts = s.points.filter((p) => p[1] !== null);
    if (pts.length === 0) continue;
    parts.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ")}"/>`,
    );
  }
  svg.innerHTML = parts.join("");
}
