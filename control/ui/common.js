// What every tab of the UI shares: DOM helpers, the session's token, the API client, plain words.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
/** The bearer token of this browser tab's session ("" when read-only). */
export const session = { token: sessionStorage.getItem("graywall-token") || "" };

/** "1 minute", "5 minutes". */
export const plural = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;

/** The targets the gateway routes (GET /api/targets), for the target choices. */
export const routed = { targets: ["canary", "stable"], default: "stable" };

/** A select of the routed targets with `value` chosen (kept even if the gateway no longer routes it). */
export function fillTargets(select, value) {
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
export function errorWords(e, doc) {
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

export function say(text, kind = "ok") {
  const m = $("#message");
  m.textContent = text;
  m.className = kind;
}

export async function api(method, path, body, version) {
  const headers = body === undefined ? {} : { "content-type": "application/json" };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
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
export async function withConfirmation(send) {
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
