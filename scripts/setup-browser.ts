// The UI tests drive Debian's chromium with playwright-core (never a browser download).
// Installs it with apt-get when running as root; otherwise says exactly what to install.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.GRAYWALL_CHROMIUM ?? "/usr/bin/chromium";

export function setupBrowser(): string {
  if (existsSync(CHROMIUM)) {
    console.log(`[setup] chromium present: ${CHROMIUM}`);
    return CHROMIUM;
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`chromium not found at ${CHROMIUM}: install Debian's package (sudo apt-get install chromium) or set GRAYWALL_CHROMIUM`);
  }
  console.log("[setup] installing Debian's chromium with apt-get (for the UI tests)");
  for (const args of [["update", "-qq"], ["install", "-y", "-qq", "chromium"]]) {
    const r = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed: ${r.stderr.trim().split("\n").slice(-3).join("\n")}`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is missing`);
  return CHROMIUM;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    setupBrowser();
  } catch (e) {
    console.error(`[setup] ${(e as Error).message}`);
    process.exit(1);
  }
}
