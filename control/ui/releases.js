// The Releases tab: start a release from a short form, follow it in charts and words, act on it.
import { lineChart } from "./chart.js";
import { $, $$, api, plural, say, session } from "./common.js";

// ---- releases ----

export const PACES = {
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

export async function loadReleases() {
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

export async function startRelease(e) {
  e.preventDefault();
  if (!session.token) return say("Sign in with the access token to start a release.", "error");
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

export async function actOnRelease(act) {
  if (!shownRelease) return;
  if (!session.token) return say("Sign in with the access token to change a release.", "error");
  if (!confirm(ACT_QUESTIONS[act](shownRelease))) return;
  try {
    drawRelease(await api("POST", `/api/releases/${shownRelease}/${act}`, { author: "web UI" }));
    say(`Release ${shownRelease}: ${act} done.`);
    await loadReleases();
  } catch (err) {
    say(err.message, "error");
  }
}
