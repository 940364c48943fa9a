// npm run release: reproducible artifacts, and each module's OCI image pushed to a real registry (the CNCF
// distribution registry) with a real client (skopeo), pulled back, and checked the way Istio's Wasm image
// fetcher reads a compat image.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { release } from "../scripts/release.ts";
import { setupRegistry } from "../scripts/setup-tools.ts";
import { LAYER_TYPE, MANIFEST_TYPE, pluginFromImage, sha256hex } from "../scripts/lib/oci.ts";
import { changelogSection, RELEASED_MODULES, VERSION } from "../scripts/lib/release.ts";
import { startRegistry, type Service } from "../scripts/lib/services.ts";
import { ROOT } from "../runtime/paths.ts";
import { freePort } from "./e2e/harness.ts";

/** Every file under `dir` with its sha256, by relative path. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = sha256hex(readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

describe("npm run release", () => {
  let dir: string;
  let registry: Service;
  let registryHost: string;

  before(async () => {
    registryHost = `127.0.0.1:${await freePort()}`;
    dir = release({ out: mkdtempSync(join(tmpdir(), "graywall-release-")), registry: `${registryHost}/graywall`, baseUrl: "http://127.0.0.1:1/releases" });
    setupRegistry();
    registry = await startRegistry(Number(registryHost.split(":")[1]), mkdtempSync(join(tmpdir(), "graywall-registry-")));
  });
  after(async () => {
    await registry?.stop();
  });

  test("writes every module with SHA256SUMS, an image per module, manifests and the changelog section; twice the same bytes", () => {
    const files = tree(dir);
    for (const m of RELEASED_MODULES) assert.ok(files[`${m}.wasm`], m);
    const sums = readFileSync(join(dir, "SHA256SUMS"), "utf8").trim().split("\n");
    assert.deepEqual(
      sums,
      RELEASED_MODULES.map((m) => `${files[`${m}.wasm`]}  ${m}.wasm`),
    );
    assert.equal(readFileSync(join(dir, "CHANGES.md"), "utf8"), changelogSection(VERSION));
    const again = release({
      out: mkdtempSync(join(tmpdir(), "graywall-release-")),
      registry: `${registryHost}/graywall`,
      baseUrl: "http://127.0.0.1:1/releases",
    });
    assert.deepEqual(tree(again), files);
  });

  test("each image is a compat image whose plugin.wasm is the released module", () => {
    for (const m of RELEASED_MODULES) {
      const layout = join(dir, "oci", m);
      const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8"));
      assert.equal(index.manifests[0].annotations["org.opencontainers.image.ref.name"], VERSION);
      const blob = (digest: string) => readFileSync(join(layout, "blobs", "sha256", digest.replace("sha256:", "")));
      const plugin = pluginFromImage(blob(index.manifests[0].digest), blob);
      assert.equal(sha256hex(plugin), sha256hex(readFileSync(join(dir, `${m}.wasm`))), m);
    }
  });

  test("the Istio WasmPlugin points at the image in the given registry and pins its digest", () => {
    const wp = parse(readFileSync(join(dir, "istio", "wasm-plugins.yaml"), "utf8"));
    const [ref, digest] = readFileSync(join(dir, "IMAGES"), "utf8").split("\n")[0].split(" ");
    assert.equal(wp.spec.url, `oci://${ref}`);
    assert.equal(`sha256:${wp.spec.sha256}`, digest);
    assert.equal(ref, `${registryHost}/graywall/graywall:${VERSION}`);
  });

  test("skopeo pushes every image to a real registry and pulls it back; the registry serves it as Istio's fetcher reads it", async () => {
    const images = readFileSync(join(dir, "IMAGES"), "utf8").trim().split("\n");
    for (const [i, m] of RELEASED_MODULES.entries()) {
      const [ref, digest] = images[i].split(" ");
      const push = spawnSync(
        "skopeo",
        ["copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests", `oci:${join(dir, "oci", m)}:${VERSION}`, `docker://${ref}`],
        {
          encoding: "utf8",
        },
      );
      assert.equal(push.status, 0, push.stderr);
      // Pulled back with skopeo into a fresh layout: the same manifest digest.
      const back = mkdtempSync(join(tmpdir(), "graywall-pulled-"));
      const pull = spawnSync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", "--preserve-digests", `docker://${ref}`, `oci:${back}:${VERSION}`], {
        encoding: "utf8",
      });
      assert.equal(pull.status, 0, pull.stderr);
      const pulledIndex = JSON.parse(readFileSync(join(back, "index.json"), "utf8"));
      assert.equal(pulledIndex.manifests[0].digest, digest, m);

      // As Istio's fetcher: the manifest by tag over the registry API, its digest, then the last layer.
      const repo = ref.slice(registryHost.length + 1, ref.lastIndexOf(":"));
      const api = `http://${registryHost}/v2/${repo}`;
      const res = await fetch(`${api}/manifests/${VERSION}`, { headers: { accept: MANIFEST_TYPE } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), MANIFEST_TYPE);
      assert.equal(res.headers.get("docker-content-digest"), digest);
      const manifest = Buffer.from(await res.arrayBuffer());
      assert.equal(`sha256:${sha256hex(manifest)}`, digest);
      const layers = JSON.parse(manifest.toString()).layers;
      assert.equal(layers.at(-1).mediaType, LAYER_TYPE);
      const blobs = new Map<string, Buffer>();
      for (const l of layers) blobs.set(l.digest, Buffer.from(await (await fetch(`${api}/blobs/${l.digest}`)).arrayBuffer()));
      const plugin = pluginFromImage(manifest, (d) => blobs.get(d)!);
      assert.equal(sha256hex(plugin), sha256hex(readFileSync(join(dir, `${m}.wasm`))), m);
    }
  });
});

test("the version is written only in package.json (and the changelog); everything else reads it", () => {
  const tracked = spawnSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).stdout.trim().split("\n");
  const generated = new Set(["package.json", "package-lock.json", "CHANGELOG.md", "envoy/istio/wasm-plugins.yaml"]);
  const literal = new RegExp(`(^|[^0-9.])${VERSION.replaceAll(".", "\\.")}([^0-9.]|$)`);
  const found = tracked.filter(
    (f) => !generated.has(f) && !f.startsWith("tests/fixtures/") && !f.startsWith("eval/data/") && literal.test(readFileSync(join(ROOT, f), "utf8")),
  );
  assert.deepEqual(found, []);
});
