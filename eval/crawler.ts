// Runs crawler_score's header signals (the AssemblyScript code, compiled for Node) over a labelled
// set of header sets and prints precision and recall at each action threshold.
// Usage: npm run eval:crawler [-- --json]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../runtime/paths.ts";
import { loadBindings } from "../runtime/bindings.ts";

interface Sample {
  label: "bot" | "human";
  name: string;
  headers: Record<string, string>;
}

export interface EvalRow {
  threshold: string;
  at: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  precision: number;
  recall: number;
}

// The demo/default thresholds of crawler_score.
const THRESHOLDS: [string, number][] = [
  ["tag", 30],
  ["challenge", 60],
  ["block", 85],
];

export function evaluate(): { rows: EvalRow[]; scored: { sample: Sample; score: number; signals: string }[] } {
  const b = loadBindings();
  const samples: Sample[] = JSON.parse(readFileSync(join(ROOT, "eval", "crawler-dataset.json"), "utf8")).samples;
  const scored = samples.map((s) => {
    const h = (k: string) => s.headers[k] ?? "";
    const bits = b.crawlerHeaderSignals(h("user-agent"), h("accept"), h("accept-language"), h("accept-encoding"), h("sec-ch-ua"), h("sec-fetch-mode"), "https");
    return { sample: s, score: b.crawlerScore(bits), signals: b.crawlerSignalNames(bits) };
  });
  const rows = THRESHOLDS.map(([threshold, at]) => {
    let tp = 0,
      fp = 0,
      fn = 0,
      tn = 0;
    for (const { sample, score } of scored) {
      const flagged = score >= at;
      if (sample.label === "bot") flagged ? tp++ : fn++;
      else flagged ? fp++ : tn++;
    }
    return { threshold, at, tp, fp, fn, tn, precision: tp / Math.max(1, tp + fp), recall: tp / Math.max(1, tp + fn) };
  });
  return { rows, scored };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, scored } = evaluate();
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify(rows, null, 2));
  } else {
    const bots = scored.filter((s) => s.sample.label === "bot").length;
    console.log(`crawler_score header signals over ${scored.length} labelled samples (${bots} bots, ${scored.length - bots} humans), default weights\n`);
    console.log("| flagged when score >= | precision | recall | TP | FP | FN | TN |");
    console.log("|---|---|---|---|---|---|---|");
    for (const r of rows)
      console.log(`| ${r.threshold} (${r.at}) | ${r.precision.toFixed(3)} | ${r.recall.toFixed(3)} | ${r.tp} | ${r.fp} | ${r.fn} | ${r.tn} |`);
    console.log("\nMisses at tag and human scores above 0:");
    for (const { sample, score, signals } of scored) {
      if ((sample.label === "bot" && score < 30) || (sample.label === "human" && score > 0)) {
        console.log(`  ${sample.label.padEnd(5)} ${String(score).padStart(3)}  ${sample.name}  [${signals}]`);
      }
    }
  }
}
