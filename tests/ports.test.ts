// Loopback ports for real servers: test files run side by side, so a port one process was handed must not
// go to another before its user binds it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { utimesSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { claimPort, freePort, PORT_CLAIMS } from "../scripts/lib/envoy_process.ts";

describe("freePort", () => {
  test("a port handed to another process is not handed out here; a claim ten minutes old is stale", async () => {
    const other = spawnSync(
      process.execPath,
      ["--import", "tsx", "-e", 'import("./scripts/lib/envoy_process.ts").then(async (m) => console.log(await m.freePort()))'],
      { encoding: "utf8" },
    );
    const port = Number(other.stdout.trim());
    assert.ok(port > 0, other.stderr);
    assert.equal(claimPort(port), false, "the other process's port");
    const old = new Date(Date.now() - 11 * 60_000);
    utimesSync(join(PORT_CLAIMS, String(port)), old, old);
    assert.equal(claimPort(port), true, "a stale claim");
    assert.equal(claimPort(port), false, "and now it is this process's");
    // Many ports at once: all different, none the claimed one.
    const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    assert.equal(new Set(ports).size, 50);
    assert.ok(!ports.includes(port));
  });
});
