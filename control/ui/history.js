// The History tab: each version's changes by meaning, and restore.
import { $, api, say, withConfirmation } from "./common.js";
import { loadGray } from "./rules.js";

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

export async function loadHistory() {
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
