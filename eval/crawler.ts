// Evaluates crawler_score's header signals (the filter's own AssemblyScript, compiled for Node) on data it
// was not built from: isbot's crawler and browser fixtures (eval/data), 5,000 seeded browser user agents
// from the npm package user-agents, and the labelled default header sets of eval/crawler-dataset.json,
// at the thresholds of the shipped config (config/filters/crawler_score.json), with isbot beside it; and
// the behaviour of scraper families and people through the filter module (eval/behaviour.ts).
// Usage: npm run eval:crawler [-- --write]   (--write updates eval/report.md)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isbot } from "isbot";
import UserAgent from "user-agents";
import { parse } from "yaml";
import { loadBindings } from "../runtime/bindings.ts";
import { ROOT } from "../runtime/paths.ts";
import { behaviour, renderBehaviour } from "./behaviour.ts";

export const REPORT = join(ROOT, "eval", "report.md");
const SAMPLES = 5000;
const SEED = 20261126;

type Headers = Record<string, string>;
interface Thresholds {
  tag: number;
  challenge: number;
  block: number;
}

export function shippedThresholds(): Thresholds {
  const cfg = JSON.parse(readFileSync(join(ROOT, "config", "filters", "crawler_score.json"), "utf8"));
  return { tag: 30, challenge: 80, block: 95, ...cfg.thresholds };
}

const fixtures = (name: string) => Object.values(parse(readFileSync(join(ROOT, "eval", "data", name), "utf8")) as Record<string, string[]>).flat();

/** user-agents draws with Math.random: a seeded generator makes the samples the same on every run. */
function seededUserAgents(n: number, seed: number): string[] {
  let s = seed >>> 0;
  const random = Math.random;
  Math.random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  try {
    return Array.from({ length: n }, () => new UserAgent().toString());
  } finally {
    Math.random = random;
  }
}

const chromium = (ua: string) => /Chrome\/\d/.test(ua) && !/CriOS|EdgiOS|FxiOS/.test(ua);

/** The header sets a client is scored with; `scheme` is as the gateway saw the request. */
const HEADER_SETS: Record<string, (ua: string) => { headers: Headers; scheme: string }> = {
  "full headers, HTTPS": (ua) => ({
    scheme: "https",
    headers: {
      "user-agent": ua,
      accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
      "accept-language": "en-US,en;q=0.9",
      "accept-encoding": "gzip, deflate, br",
      "sec-fetch-mode": "navigate",
      ...(chromium(ua) ? { "sec-ch-ua": '"Chromium";v="131", "Not_A Brand";v="24"' } : {}),
    },
  }),
  "no Sec-* headers, plain HTTP": (ua) => ({
    scheme: "http",
    headers: { "user-agent": ua, accept: "text/html,*/*;q=0.8", "accept-language": "en-US,en;q=0.9", "accept-encoding": "gzip, deflate" },
  }),
  "user-agent + accept: */* only, HTTPS": (ua) => ({ scheme: "https", headers: { "user-agent": ua, accept: "*/*" } }),
};

const CRAWLER_SETS: Record<string, (ua: string) => { headers: Headers; scheme: string }> = {
  "minimal headers": (ua) => ({ scheme: "https", headers: { "user-agent": ua, accept: "*/*" } }),
  "Chrome-like header set": (ua) => HEADER_SETS["full headers, HTTPS"](ua),
};

export interface Rate {
  set: string;
  n: number;
  tag: number;
  challenge: number;
  block: number;
  isbot: number;
}

export function evaluate() {
  const b = loadBindings();
  const t = shippedThresholds();
  const scoreOf = ({ headers: h, scheme }: { headers: Headers; scheme: string }) =>
    b.crawlerScore(
      b.crawlerHeaderSignals(
        h["user-agent"] ?? "",
        h.accept ?? "",
        h["accept-language"] ?? "",
        h["accept-encoding"] ?? "",
        h["sec-ch-ua"] ?? "",
        h["sec-fetch-mode"] ?? "",
        scheme,
      ),
    );
  const rate = (set: string, uas: string[], make: (ua: string) => { headers: Headers; scheme: string }): Rate => {
    const scores = uas.map((ua) => scoreOf(make(ua)));
    const share = (f: (s: number) => boolean) => scores.filter(f).length / uas.length;
    return {
      set,
      n: uas.length,
      tag: share((s) => s >= t.tag),
      challenge: share((s) => s >= t.challenge),
      block: share((s) => s >= t.block),
      isbot: uas.filter((ua) => isbot(ua)).length / uas.length,
    };
  };
  const crawlers = fixtures("isbot-crawlers.yml");
  const browsers = fixtures("isbot-browsers.yml");
  const samples = seededUserAgents(SAMPLES, SEED);
  const crawlerRates = Object.entries(CRAWLER_SETS).map(([name, make]) => rate(`isbot crawlers, ${name}`, crawlers, make));
  const browserRates = Object.entries(HEADER_SETS).flatMap(([name, make]) => [
    rate(`isbot browsers, ${name}`, browsers, make),
    rate(`user-agents samples, ${name}`, samples, make),
  ]);
  // The labelled default header sets of real clients (libraries, crawlers, browsers).
  const labelled: { label: string; name: string; headers: Headers }[] = JSON.parse(readFileSync(join(ROOT, "eval", "crawler-dataset.json"), "utf8")).samples;
  const defaults = (label: string) => {
    const set = labelled.filter((s) => s.label === label);
    const scores = set.map((s) => scoreOf({ headers: s.headers, scheme: "https" }));
    const share = (f: (s: number) => boolean) => scores.filter(f).length / set.length;
    return {
      set: `default header sets of ${label === "bot" ? "automated clients" : "browsers"} (crawler-dataset.json)`,
      n: set.length,
      tag: share((s) => s >= t.tag),
      challenge: share((s) => s >= t.challenge),
      block: share((s) => s >= t.block),
      isbot: set.filter((s) => isbot(s.headers["user-agent"] ?? "")).length / set.length,
    };
  };
  return { thresholds: t, crawlerRates: [...crawlerRates, defaults("bot")], browserRates: [...browserRates, defaults("human")] };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function renderReport(): string {
  const { thresholds: t, crawlerRates, browserRates } = evaluate();
  const row = (r: Rate) => `| ${r.set} | ${r.n} | ${pct(r.tag)} | ${pct(r.challenge)} | ${pct(r.block)} | ${pct(r.isbot)} |`;
  const head = `| data, header set | n | >= tag (${t.tag}) | >= challenge (${t.challenge}) | >= block (${t.block}) | isbot(ua) |\n|---|---|---|---|---|---|`;
  return `# crawler_score evaluation

Generated by \`npm run eval:crawler -- --write\`; \`npm test\` checks that it reproduces. Header signals
only (no behaviour), default weights, the shipped thresholds (\`config/filters/crawler_score.json\`).
Data: isbot's fixtures (\`eval/data\`, public domain), ${SAMPLES} user-agents samples (seed ${SEED}), and the
labelled header sets of \`eval/crawler-dataset.json\`. The last column is the share the isbot package
flags from the user agent alone.

## Automated clients: share scored at or above each threshold (recall)

${head}
${crawlerRates.map(row).join("\n")}

## Browsers: share scored at or above each threshold (false positives)

${head}
${browserRates.map(row).join("\n")}

${renderBehaviour(behaviour())}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = renderReport();
  if (process.argv.includes("--write")) writeFileSync(REPORT, text);
  console.log(text);
}
