// The Gateways tab: every Envoy of the fleet and the version it runs.
import { $, api } from "./common.js";

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

export async function loadGateways() {
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
