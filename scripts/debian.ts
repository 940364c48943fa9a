// Tools from Debian's packages (chromium for the UI tests, wrk for the benchmark): installed with
// apt-get when running as root, otherwise a clear message of what to install.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

let updated = false;

/** Makes sure `binary` exists, installing Debian package `pkg` if it can. Returns the binary's path. */
export function ensureDebianTool(binary: string, pkg: string, why: string): string {
  if (existsSync(binary)) {
    console.log(`[setup] ${pkg} present: ${binary}`);
    return binary;
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`${binary} not found (${why}): install Debian's package with 'sudo apt-get install ${pkg}'`);
  }
  console.log(`[setup] installing Debian's ${pkg} with apt-get (${why})`);
  const steps = updated
    ? [["install", "-y", "-qq", pkg]]
    : [
        ["update", "-qq"],
        ["install", "-y", "-qq", pkg],
      ];
  for (const args of steps) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed: ${r.stderr.trim().split("\n").slice(-3).join("\n")}`);
  }
  updated = true;
  if (!existsSync(binary)) throw new Error(`apt-get installed ${pkg} but ${binary} is missing`);
  return binary;
}
