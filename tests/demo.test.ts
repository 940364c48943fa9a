// The demo a new user starts with `npm start`: its upstream answers any request, and a port that is
// already taken is reported with what holds it instead of a half-started demo.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { connect, createServer, type Server } from "node:net";
import { after, test } from "node:test";
import { ROOT } from "../runtime/paths.ts";
import { startUpstream } from "../scripts/upstream.ts";
import { freePort } from "./e2e/harness.ts";

/** Sends a raw HTTP/1.1 request line (fetch() would normalise the path) and returns the status line. */
function rawGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let out = "";
    s.on("data", (d) => (out += d));
    s.on("end", () => resolve(out.split("\r\n")[0]));
    s.on("error", reject);
  });
}

test("the demo upstream answers paths that are not URLs and keeps serving", async () => {
  const port = await freePort();
  const u = await startUpstream({ name: "stable", port });
  after(() => new Promise<void>((r) => u.close(() => r())));
  for (const path of ["//", "///", "//%zz", "/?status=%zz&delay=%", "/a?b=1"]) {
    assert.equal(await rawGet(port, path), "HTTP/1.1 200 OK", path);
  }
});

test("npm start refuses a taken port and names what holds it", async () => {
  const held: Server = createServer();
  // The canary upstream's port, held here (or by whatever already holds it).
  await new Promise<void>((resolve) => {
    held.once("error", () => resolve());
    held.listen(18082, "127.0.0.1", () => resolve());
  });
  after(() => new Promise<void>((r) => (held.listening ? held.close(() => r()) : r())));
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, GRAYWALL_CONTROL_PORT: String(await freePort()) },
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /port 18082 \(the canary demo upstream\) is taken by \S+ \(pid \d+\)/);
});
