// The demo a new user starts with `npm start`: its upstream answers any request, and a port that is
// already taken is reported with what holds it instead of a half-started demo.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type Server } from "node:net";
import { after, test } from "node:test";
import { ROOT } from "../runtime/paths.ts";
import { startUpstream } from "../scripts/upstream.ts";
import { eventually, freePort } from "./e2e/harness.ts";

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

/** `npm start` (with `args`) as a child process, started and waited for until it says `ready` (or exits). */
async function startDemo(args: string[], env: Record<string, string>, ready: string) {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const demo = { child, out: "", exited: new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code))) };
  child.stdout.on("data", (d) => (demo.out += d));
  child.stderr.on("data", (d) => (demo.out += d));
  try {
    await eventually(async () => demo.out.includes(ready) || child.exitCode !== null, 120_000, `npm start ${args.join(" ")}`);
    assert.ok(demo.out.includes(ready), demo.out);
  } catch (e) {
    if (child.exitCode === null) child.kill("SIGKILL");
    throw e;
  }
  return demo;
}

/**
 * Stops a demo a failed test left running: Ctrl-C first, so npm start stops its Envoys and services
 * (a SIGKILL would leave them running), then SIGKILL if it has not exited within 15 s.
 */
async function stopDemo(demo: Awaited<ReturnType<typeof startDemo>>): Promise<void> {
  if (demo.child.exitCode !== null || demo.child.signalCode !== null) return;
  demo.child.kill("SIGINT");
  const t = setTimeout(() => demo.child.kill("SIGKILL"), 15_000);
  await demo.exited;
  clearTimeout(t);
}

test("the demo upstream answers paths that are not URLs and keeps serving", async () => {
  const port = await freePort();
  const u = await startUpstream({ name: "stable", port });
  after(() => new Promise<void>((r) => u.close(() => r())));
  for (const path of ["//", "///", "//%zz", "/?status=%zz&delay=%", "/a?b=1"]) {
    assert.equal(await rawGet(port, path), "HTTP/1.1 200 OK", path);
  }
});

test("the demo upstream keeps an idle connection open past Node's default 5 s, for Envoy to reuse without a 503", async () => {
  const port = await freePort();
  const u = await startUpstream({ name: "stable", port });
  after(() => new Promise<void>((r) => u.close(() => r())));
  const s = connect(port, "127.0.0.1");
  after(() => s.destroy());
  let closed = false;
  let out = "";
  s.on("close", () => (closed = true));
  s.on("data", (d) => (out += d));
  const get = async (n: number) => {
    s.write("GET /keep HTTP/1.1\r\nHost: x\r\n\r\n");
    await eventually(async () => (out.match(/HTTP\/1\.1 200 OK/g) ?? []).length >= n, 5000, `answer ${n}`);
  };
  await get(1);
  // Idle for longer than Node's default keep-alive timeout (5 s, and a second's grace: closed at about
  // 6 s): the time itself is what is tested.
  await new Promise((r) => setTimeout(r, 7000));
  assert.equal(closed, false, "the upstream closed an idle connection Envoy may be about to reuse");
  await get(2);
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

test("npm start serves the demo, survives any request, and stops everything when a part dies", async () => {
  const dir = mkdtempSync(join(tmpdir(), "graywall-demo-"));
  const [listener, admin, stable, canary, control] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const demo = await startDemo(
    [],
    {
      GRAYWALL_DEMO_PORTS: [listener, admin, stable, canary].join(","),
      GRAYWALL_CONTROL_PORT: String(control),
      GRAYWALL_DATA: join(dir, "data"),
      GRAYWALL_ECDS_DIR: join(dir, "ecds"),
    },
    "gateway is up",
  );
  try {
    assert.equal(await rawGet(listener, "/"), "HTTP/1.1 200 OK");
    assert.equal(await rawGet(listener, "//%zz"), "HTTP/1.1 200 OK", "the demo survives a path that is not a URL");
    assert.equal(await rawGet(listener, "/"), "HTTP/1.1 200 OK");
    // Envoy dies: npm start stops the rest and exits non-zero, saying why.
    const { child, exited } = demo;
    const envoys = spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .filter(Boolean);
    assert.equal(envoys.length, 1, demo.out);
    process.kill(Number(envoys[0]), "SIGKILL");
    assert.equal(await exited, 1);
    assert.match(demo.out, /\[start\] Envoy exited/);
    // Nothing is left behind on the demo's ports.
    for (const port of [stable, canary, control])
      await new Promise<void>((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
      });
  } finally {
    await stopDemo(demo);
  }
});

/**
 * Starts `npm start` in a process group of its own, sends `signal` to the npm process, the tsx process
 * (npm's child, once its shell has exec'd tsx) or the whole group, and checks every part is gone within
 * 5 s.
 */
async function demoStopsOn(signal: NodeJS.Signals, target: "npm" | "tsx" | "group"): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "graywall-demo-npm-"));
  const [listener, admin, stable, canary, control] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const npm = spawn("npm", ["start"], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      GRAYWALL_DEMO_PORTS: [listener, admin, stable, canary].join(","),
      GRAYWALL_CONTROL_PORT: String(control),
      GRAYWALL_DATA: join(dir, "data"),
      GRAYWALL_ECDS_DIR: join(dir, "ecds"),
    },
  });
  let out = "";
  npm.stdout.on("data", (d) => (out += d));
  npm.stderr.on("data", (d) => (out += d));
  const descendants = (pid: number): number[] => {
    const kids = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
    return kids.flatMap((k) => [k, ...descendants(k)]);
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    await eventually(async () => out.includes("gateway is up") || npm.exitCode !== null, 120_000, "npm start");
    assert.ok(out.includes("gateway is up"), out);
    const parts = descendants(npm.pid!);
    assert.ok(parts.length >= 3, `npm's processes: ${parts}`);
    if (target === "npm") process.kill(npm.pid!, signal);
    else if (target === "group") process.kill(-npm.pid!, signal);
    else {
      const tsx = parts.find((pid) => /tsx/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8")));
      assert.ok(tsx, "the tsx process");
      process.kill(tsx, signal);
    }
    await eventually(async () => ![npm.pid!, ...parts].some(alive), 5000, `every part of the demo gone after ${signal} to ${target}`);
  } finally {
    for (const pid of [npm.pid!, ...descendants(npm.pid!)]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone meanwhile */
      }
    }
  }
}

for (const [signal, target] of [
  ["SIGINT", "npm"],
  ["SIGTERM", "npm"],
  ["SIGTERM", "tsx"],
  ["SIGINT", "group"],
] as const) {
  test(`${signal} to the ${target === "group" ? "process group" : `${target} process`} of npm start stops every part within 5 s, nothing left behind`, () =>
    demoStopsOn(signal, target));
}

/** A base port with `n` consecutive free ports after it. */
async function freeRange(n: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  for (;;) {
    // Below the kernel's ephemeral range (ip_local_port_range), where every freePort() of the tests
    // running beside this one comes from: a range checked free here is not handed to them meanwhile.
    const [ephemeralLow] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    const base = 20000 + Math.floor(Math.random() * Math.max(1, ephemeralLow - 20000 - n));
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await free(p);
    if (ok) return base;
  }
}

test("npm start -- --fleet: two gateways on one control service share a cluster limit, fail open while Redis is down and hold it again once it is back; Ctrl-C stops every part", async () => {
  const base = await freeRange(12);
  const dir = mkdtempSync(join(tmpdir(), "graywall-fleet-demo-"));
  const demo = await startDemo(
    ["--fleet"],
    { GRAYWALL_FLEET_PORT_BASE: String(base), GRAYWALL_DATA: join(dir, "data"), GRAYWALL_ECDS_DIR: join(dir, "ecds"), GRAYWALL_REDIS_RESTART_MS: "8000" },
    "fleet is up",
  );
  const { child, exited } = demo;
  try {
    // The shared limit counts 8 per minute (fixed windows) across both gateways; each gateway's own rule
    // admits 5 per 10 s. Alternating 12 requests: 8 pass, the 9th and 10th meet the shared limit, the
    // 11th and 12th the local one.
    await eventually(async () => new Date().getSeconds() < 45, 20_000, "the first 45 s of a minute");
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await fetch(`http://127.0.0.1:${base + (i % 2)}/api/fleet-demo`)).status);
    assert.deepEqual(statuses, [...Array(8).fill(200), ...Array(4).fill(429)]);
    // Redis killed: the demo keeps running, the gateways let requests past the spent shared limit
    // (fail-open), and once the demo has brought Redis back the limit is checked against it again.
    const rl = async () => {
      const text = await (await fetch(`http://127.0.0.1:${base + 2}/stats?filter=ratelimit%5C.`)).text();
      const sum = (stat: string) => [...text.matchAll(new RegExp(`\\.ratelimit\\.${stat}: (\\d+)`, "g"))].reduce((n, m) => n + Number(m[1]), 0);
      return { failOpen: sum("failure_mode_allowed"), answered: sum("ok") + sum("over_limit") };
    };
    const before = await rl();
    const pid = spawnSync("pgrep", ["-f", `redis-server 127.0.0.1:${base + 8}`], { encoding: "utf8" }).stdout.trim();
    assert.match(pid, /^\d+$/, "Redis's pid");
    process.kill(Number(pid), "SIGKILL");
    await eventually(async () => demo.out.includes("Redis exited"), 10_000, "the demo saying Redis exited");
    const passedWhileDown: number[] = [];
    await eventually(
      async () => {
        passedWhileDown.push((await fetch(`http://127.0.0.1:${base}/api/fleet-demo`)).status);
        return passedWhileDown.includes(200) && (await rl()).failOpen > before.failOpen;
      },
      15_000,
      "a request let through while Redis is down",
    );
    assert.equal(child.exitCode, null, "the demo keeps running");
    await eventually(async () => demo.out.includes("Redis is back"), 20_000, "the demo bringing Redis back");
    const back = await rl();
    await eventually(
      async () => {
        await fetch(`http://127.0.0.1:${base + 1}/api/fleet-demo`);
        await fetch(`http://127.0.0.1:${base}/api/fleet-demo`);
        return (await rl()).answered > back.answered;
      },
      20_000,
      "the ratelimit service answering from Redis again",
    );
    const g = await (await fetch(`http://127.0.0.1:${base + 6}/api/gateways`)).json();
    assert.deepEqual(
      g.gateways.map((x: { node: string; version: string }) => [x.node, x.version === g.version]),
      [
        ["gateway-1", true],
        ["gateway-2", true],
      ],
    );
    child.kill("SIGINT");
    assert.equal(await exited, 0);
    for (let p = base; p < base + 12; p++)
      await new Promise<void>((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen(p, "127.0.0.1", () => s.close(() => resolve()));
      });
  } finally {
    await stopDemo(demo);
  }
});
