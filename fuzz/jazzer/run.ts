// npm run fuzz:jazzer -- [--target compilers|requests] [--runs N] [--seconds S] [--keep]
// Coverage-guided fuzzing with Jazzer.js (libFuzzer) of the targets in this folder, from the committed
// corpus in fuzz/jazzer/corpus/<target>/. New inputs go to a scratch folder, so a run never changes the
// repository; `--keep` adds the inputs a run found (each one that added coverage) to the committed
// corpus. (libFuzzer's -merge=1 does not finish under Jazzer.js 4.0 here: its inner runs restart.) Exits non-zero on a finding, which libFuzzer writes out as a
// crash-* file with the input that reproduces it. tests/fuzz.test.ts runs a bounded run of each target.
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../runtime/paths.ts";
import { jazzerEnv } from "../../scripts/lib/jazzer.ts";

export const TARGETS = ["compilers", "requests"] as const;
export type Target = (typeof TARGETS)[number];

export interface JazzerRun {
  status: number | null;
  /** libFuzzer's last coverage figure (features covered), 0 if none was printed. */
  cov: number;
  /** Inputs run. */
  runs: number;
  output: string;
}

const CLI = join(ROOT, "node_modules", "@jazzer.js", "core", "dist", "cli.js");

/** Jazzer.js on `target` with corpus folders `dirs` (new inputs go to the first) and libFuzzer's `flags`. */
function jazzer(target: Target, dirs: string[], flags: string[], echo = false): Promise<JazzerRun> {
  // Jazzer.js adds ".js" to a path without it; tsx resolves that to the TypeScript file.
  const args = ["--import", "tsx", CLI, join(ROOT, "fuzz", "jazzer", `${target}.fuzz`), ...dirs, "--sync", "--", ...flags];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: jazzerEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const take = (chunk: Buffer) => {
      output += chunk.toString();
      if (echo) process.stderr.write(chunk);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (status) => {
      const covs = [...output.matchAll(/ cov: (\d+)/g)];
      const done = /Done (\d+) runs/.exec(output);
      resolve({ status, cov: covs.length > 0 ? Number(covs[covs.length - 1][1]) : 0, runs: done ? Number(done[1]) : 0, output });
    });
  });
}

/**
 * One libFuzzer run of `target` from the committed corpus, for `runs` inputs or `seconds`, whichever ends
 * first; new inputs go to a scratch folder. `keep`: then copies them into the committed corpus.
 */
export async function runJazzer(target: Target, opts: { runs?: number; seconds?: number; keep?: boolean; echo?: boolean } = {}): Promise<JazzerRun> {
  const committed = join(ROOT, "fuzz", "jazzer", "corpus", target);
  mkdirSync(committed, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), `graywall-jazzer-${target}-`));
  const flags = [`-artifact_prefix=${scratch}/`, "-max_len=4096", "-timeout=10"];
  const run = await jazzer(target, [scratch, committed], [`-runs=${opts.runs ?? 1_000_000_000}`, `-max_total_time=${opts.seconds ?? 0}`, ...flags], opts.echo);
  if (run.status === 0 && opts.keep) cpSync(scratch, committed, { recursive: true });
  return run;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const only = arg("--target");
  const seconds = Number(arg("--seconds") ?? 60);
  const runs = arg("--runs") ? Number(arg("--runs")) : undefined;
  let failed = false;
  for (const target of TARGETS.filter((t) => !only || t === only)) {
    const r = await runJazzer(target, { seconds, runs, keep: process.argv.includes("--keep"), echo: true });
    console.log(`[fuzz:jazzer] ${target}: ${r.runs} inputs, coverage ${r.cov}, exit ${r.status}`);
    failed ||= r.status !== 0;
  }
  process.exit(failed ? 1 : 0);
}
