// envoy/docker-compose.yaml run for real, unchanged, with Debian's podman and podman-compose (no Docker
// engine here) and images built locally under the names it gives (scripts/lib/compose.ts; the setup
// builds them): Envoy with the built graywall.wasm in front of two echo servers, envoyproxy/ratelimit
// and Redis, on the compose network with service-name DNS and published ports. Routing, a limit and a
// refusal through it; then `down` leaves no container.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { compose, projectContainers, removeProjectNetwork } from "../../scripts/lib/compose.ts";
import { BROWSER_PAGE_VIEW, e2e, eventually, freePort, rawRequest } from "./harness.ts";

describe("docker-compose.yaml with podman", () => {
  e2e("up: routing to stable and canary, a rate limit, a honeypot refusal; down: nothing left running", async () => {
    const project = `graywall-test-${process.pid}`;
    const [listener, admin] = [await freePort(), await freePort()];
    const env = { GRAYWALL_LISTENER_PORT: String(listener), GRAYWALL_ADMIN_PORT: String(admin) };
    try {
      compose(project, ["up", "-d"], env);
      assert.equal(projectContainers(project).length, 5, "envoy, stable, canary, graywall_ratelimit, redis");
      const url = (path: string) => `http://127.0.0.1:${listener}${path}`;
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined))?.status === 200,
        30000,
        "Envoy in the compose project is ready",
      );
      // Routing by the shipped gray rule: the beta group goes to canary, everyone else to stable (the
      // echo servers answer by their service names on the compose network).
      const page = (headers: Record<string, string> = {}) => rawRequest(url("/"), { headers: { ...BROWSER_PAGE_VIEW, ...headers } });
      await eventually(async () => (await page().catch(() => undefined))?.status === 200, 15000, "the first page through the compose gateway");
      assert.match((await page({ "x-user-group": "beta" })).body, /"version":"canary"/);
      assert.match((await page()).body, /"version":"stable"/);
      // The shipped rate limit: 5 requests under /api/ per client, then 429.
      const api: number[] = [];
      for (let i = 0; i < 7; i++) api.push((await rawRequest(url("/api/orders"), { headers: { ...BROWSER_PAGE_VIEW, accept: "application/json" } })).status);
      assert.deepEqual(api.slice(0, 5), [200, 200, 200, 200, 200]);
      assert.equal(api[6], 429);
      // A honeypot path is refused.
      assert.equal((await rawRequest(url("/.env"), { headers: BROWSER_PAGE_VIEW })).status, 403);
      // The ratelimit service and Redis came up beside it: the crawler's fleet counts reach the service.
      const stats = await (await fetch(`http://127.0.0.1:${admin}/stats?filter=graywall_ratelimit_http`)).text();
      assert.match(stats, /cluster\.graywall_ratelimit_http\.upstream_cx_connect_fail: 0/);
    } finally {
      compose(project, ["down"], env);
      const left = projectContainers(project);
      removeProjectNetwork(project);
      assert.deepEqual(left, [], "down leaves no container of the project");
    }
  });
});
