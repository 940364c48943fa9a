// The compose file checked statically against the Envoy config it mounts; tests/e2e/compose_podman.test.ts runs it with podman.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { ROOT } from "../runtime/paths.ts";
import { FILTERS } from "../runtime/filters.ts";
import { RATELIMIT_HTTP_CLUSTER, ratelimitServiceConfig } from "../runtime/cluster_limits.ts";
import { RATELIMIT_VERSION } from "../scripts/lib/services.ts";

const composeFile = join(ROOT, "envoy", "docker-compose.yaml");
const compose = parse(readFileSync(composeFile, "utf8"));
const envoySvc = compose.services.envoy;
const mounts: [string, string][] = envoySvc.volumes.map((v: string) => {
  const [host, container] = v.split(":");
  return [resolve(dirname(composeFile), host), container];
});
const configMount = mounts.find(([, c]) => c === envoySvc.command[envoySvc.command.indexOf("-c") + 1])!;
const envoyCfg = parse(readFileSync(configMount[0], "utf8"));

test("the Envoy image is the official one, pinned to the 1.40 line the tests run", () => {
  assert.match(envoySvc.image, /^envoyproxy\/envoy:v1\.40\.\d+$/);
});

test("every mounted file or directory exists, and every filter module is in the mounted build", () => {
  for (const [host] of mounts) assert.ok(existsSync(host), host);
  const buildMount = mounts.find(([, c]) => c === `${envoySvc.working_dir}/build`);
  assert.ok(buildMount, "build/ is mounted under the working directory");
  for (const f of FILTERS) assert.ok(existsSync(join(buildMount[0], `${f.name}.wasm`)), f.name);
  const paths: string[] = [];
  JSON.stringify(envoyCfg, (k, v) => {
    if (k === "filename") paths.push(v);
    return v;
  });
  for (const p of paths) assert.ok(existsSync(join(buildMount[0], "..", p)), `envoy.yaml loads ${p}`);
});

test("the published ports default to the Envoy config's and can be moved by the environment", () => {
  assert.deepEqual(envoySvc.ports, ["${GRAYWALL_LISTENER_PORT:-10000}:10000", "${GRAYWALL_ADMIN_PORT:-9901}:9901"]);
});

test("ports and cluster names agree with the Envoy config", () => {
  // "${GRAYWALL_LISTENER_PORT:-10000}:10000": the container's port is the last part.
  const published = envoySvc.ports.map((p: string) => Number(p.split(":").at(-1)));
  assert.ok(published.includes(envoyCfg.admin.address.socket_address.port_value));
  for (const l of envoyCfg.static_resources.listeners) assert.ok(published.includes(l.address.socket_address.port_value));
  for (const c of envoyCfg.static_resources.clusters.filter((c: any) => c.load_assignment)) {
    const addr = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    const svc = compose.services[addr.address];
    assert.ok(svc, `cluster ${c.name} is a compose service`);
    // The ratelimit service's HTTP port (crawler_score's fleet counts) is a second cluster of that service.
    assert.equal(addr.address, c.name === RATELIMIT_HTTP_CLUSTER ? "graywall_ratelimit" : c.name);
    const port = String(addr.port_value);
    const listens = svc.environment?.GRPC_PORT === port || svc.environment?.PORT === port || svc.command.some((a: string) => a === `-listen=:${port}`);
    assert.ok(listens, `${c.name} listens on ${addr.port_value}`);
  }
  const shipped = parse(readFileSync(join(ROOT, "envoy", "envoy.yaml"), "utf8"));
  assert.deepEqual(
    envoyCfg.static_resources.clusters.map((c: any) => c.name),
    // No graywall-control runs in compose, so no JWKS cluster (and no token verification).
    [...shipped.static_resources.clusters.map((c: any) => c.name).filter((n: string) => n !== "graywall_control_http"), RATELIMIT_HTTP_CLUSTER],
  );
});

test("the ratelimit service is the commit the setup builds, reads the rendered config, and counts in the compose Redis", () => {
  const svc = compose.services.graywall_ratelimit;
  assert.equal(svc.image, `envoyproxy/ratelimit:${RATELIMIT_VERSION.split("-").pop()!.slice(0, 8)}`);
  const [host, container] = svc.volumes[0].split(":");
  assert.equal(container, `${svc.environment.RUNTIME_ROOT}/${svc.environment.RUNTIME_SUBDIRECTORY}`);
  assert.equal(
    readFileSync(join(resolve(dirname(composeFile), host), "config", "graywall.yaml"), "utf8"),
    ratelimitServiceConfig(JSON.parse(readFileSync(join(ROOT, "config", "filters", "rate_limiter.json"), "utf8"))),
  );
  assert.ok(compose.services[svc.environment.REDIS_URL.split(":")[0]], "REDIS_URL names a compose service");
});
