// envoy/docker-compose.yaml, run for real without a Docker engine: Debian's podman and podman-compose,
// with runc (podman 4.3's default crun fails on this machine kind's hybrid cgroups) and a containers.conf
// of no default ulimits and the cgroupfs manager. Public image registries cannot be reached, so the
// images the compose file names are built here under those same names, from one Debian minbase rootfs
// (debootstrap, with Debian's redis): Envoy from the PyPI build the tests run, envoyproxy/ratelimit as
// the setup builds it, a small echo server for hashicorp/http-echo, Debian's redis for redis. The
// compose file itself is unchanged.
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { envoyBinary, ROOT } from "../../runtime/paths.ts";
import { RATELIMIT_BINARY } from "./services.ts";

export const COMPOSE_FILE = join(ROOT, "envoy", "docker-compose.yaml");
const TOOLS = join(ROOT, ".tools");
export const CONTAINERS_CONF = join(TOOLS, "containers.conf");
const BASE_IMAGE = "localhost/graywall-compose-base:bookworm";
const ECHO_SOURCE = join(ROOT, "scripts", "compose", "http-echo");

/** The environment podman and podman-compose run with. */
export function podmanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, CONTAINERS_CONF, ...extra };
}

function run(cmd: string, args: string[], opts: { input?: Buffer; env?: NodeJS.ProcessEnv; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: opts.env ?? podmanEnv(), cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 28 });
  if (r.error || r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed: ${r.error?.message ?? ""}${(r.stderr ?? "").trim().split("\n").slice(-5).join("\n")}`);
  return r.stdout;
}

/** The images the compose file names, each built from a context dir with these files and this Containerfile. */
function imageSpecs(echoBinary: string): { name: string; files: Record<string, string>; containerfile: string }[] {
  const services = parse(readFileSync(COMPOSE_FILE, "utf8")).services as Record<string, { image: string }>;
  const image = (svc: string) => services[svc].image;
  return [
    {
      name: image("envoy"),
      files: { envoy: envoyBinary() },
      containerfile: `FROM ${BASE_IMAGE}\nCOPY envoy /usr/local/bin/envoy\nCMD ["envoy", "--version"]\n`,
    },
    { name: image("stable"), files: { "http-echo": echoBinary }, containerfile: `FROM ${BASE_IMAGE}\nCOPY http-echo /http-echo\nENTRYPOINT ["/http-echo"]\n` },
    {
      name: image("graywall_ratelimit"),
      files: { ratelimit: RATELIMIT_BINARY },
      containerfile: `FROM ${BASE_IMAGE}\nCOPY ratelimit /bin/ratelimit\nCMD ["/bin/ratelimit"]\n`,
    },
    {
      name: image("redis"),
      files: {},
      containerfile: `FROM ${BASE_IMAGE}\nCMD ["redis-server", "--protected-mode", "no", "--bind", "0.0.0.0", "--save", "", "--appendonly", "no"]\n`,
    },
  ];
}

/** A hash of an image's inputs: rebuilt when a binary or its Containerfile changes. */
function inputsHash(files: Record<string, string>, containerfile: string): string {
  const h = createHash("sha256").update(containerfile);
  for (const [name, path] of Object.entries(files)) h.update(name).update(readFileSync(path));
  return h.digest("hex").slice(0, 16);
}

const imageLabel = (name: string): string | undefined => {
  const r = spawnSync("podman", ["image", "inspect", "--format", '{{index .Labels "graywall.inputs"}}', name], { encoding: "utf8", env: podmanEnv() });
  return r.status === 0 ? r.stdout.trim() : undefined;
};

/**
 * The compose file's images, built locally when missing or when their inputs changed (idempotent):
 * containers.conf, the Debian rootfs and base image, the echo server, then each image.
 */
export function buildComposeImages(log: (s: string) => void = console.log): void {
  mkdirSync(TOOLS, { recursive: true });
  writeFileSync(CONTAINERS_CONF, '[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\nevents_logger = "file"\n');
  if (spawnSync("podman", ["image", "exists", BASE_IMAGE], { env: podmanEnv() }).status !== 0) {
    // Made outside the repository and gone once imported: the image is what is kept.
    const rootfs = mkdtempSync(join(tmpdir(), "graywall-rootfs-"));
    try {
      log("[setup] debootstrap: a Debian bookworm minbase rootfs with redis for the compose images (about 30 s)");
      run("debootstrap", ["--variant=minbase", "--include=redis-server", "bookworm", rootfs], { env: process.env });
      log(`[setup] importing the rootfs as ${BASE_IMAGE}`);
      const tar = spawnSync("tar", ["-C", rootfs, "-c", "."], { maxBuffer: 1 << 30 });
      if (tar.status !== 0) throw new Error(`tar of ${rootfs} failed`);
      run("podman", ["import", "-", BASE_IMAGE], { input: tar.stdout });
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  }
  const echo = join(TOOLS, "http-echo");
  if (!existsSync(echo) || statSync(echo).mtimeMs < statSync(join(ECHO_SOURCE, "main.go")).mtimeMs) {
    run("go", ["build", "-o", echo, "."], { cwd: ECHO_SOURCE, env: { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=mod" } });
  }
  for (const spec of imageSpecs(echo)) {
    const inputs = inputsHash(spec.files, spec.containerfile);
    if (imageLabel(spec.name) === inputs) continue;
    log(`[setup] building ${spec.name} (compose)`);
    const ctx = mkdtempSync(join(tmpdir(), "graywall-image-"));
    try {
      for (const [name, path] of Object.entries(spec.files)) copyFileSync(path, join(ctx, name));
      writeFileSync(join(ctx, "Containerfile"), spec.containerfile);
      // Docker Hub short names resolve to docker.io/...: tag the same way, so the compose file finds them.
      const first = spec.name.split("/")[0];
      const full = !spec.name.includes("/")
        ? `docker.io/library/${spec.name}`
        : first.includes(".") || first.includes(":")
          ? spec.name
          : `docker.io/${spec.name}`;
      run("podman", ["build", "-q", "--label", `graywall.inputs=${inputs}`, "-t", full, ctx]);
      // The image it replaced, if any, is left untagged: remove it.
      spawnSync("podman", ["image", "prune", "-f"], { env: podmanEnv() });
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
  }
}

/** podman-compose on the shipped compose file, as project `project`, with `env` (the published ports). */
export function compose(project: string, args: string[], env: Record<string, string> = {}): string {
  return run("podman-compose", ["-p", project, "-f", COMPOSE_FILE, ...args], { env: podmanEnv(env), cwd: join(ROOT, "envoy") });
}

/** Names of the project's containers, running or not. */
export function projectContainers(project: string): string[] {
  return run("podman", ["ps", "-a", "--filter", `label=io.podman.compose.project=${project}`, "--format", "{{.Names}}"])
    .split("\n")
    .filter(Boolean);
}

/** Removes what podman-compose 1.0's `down` leaves: the project's network. */
export function removeProjectNetwork(project: string): void {
  spawnSync("podman", ["network", "rm", "-f", `${project}_default`], { env: podmanEnv() });
}
