// Jazzer.js (coverage-guided fuzzing, libFuzzer inside Node) on this machine's glibc.
//
// @jazzer.js/fuzzer ships its native part prebuilt, linked against glibc 2.38 and GCC 13's libstdc++;
// Debian 12 has glibc 2.36 and GCC 12. The prebuilt needs three symbols those lack: `__isoc23_strtol`
// and `__isoc23_strtoul` (C23's strtol, which also reads "0b" prefixes) and
// `std::ios_base_library_init()` (GCC 13's iostream start-up hook). So, once per install and only where the
// prebuilt does not load as it is:
//   1. a small library defines the three (strtol and strtoul, a no-op plus a static ios_base::Init) and
//      is preloaded (LD_PRELOAD) into the fuzzing process;
//   2. the prebuilt's two version requirements the system lacks (GLIBC_2.38, GLIBCXX_3.4.32) are marked
//      weak, and its three symbols bound to them unversioned, so the loader takes them from the library.
// The edit is idempotent and only touches the copy in node_modules (npm ci restores the original).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ROOT } from "../../runtime/paths.ts";

const SHIM_DIR = join(ROOT, ".tools", "jazzer");
const SHIM = join(SHIM_DIR, "libgraywall-jazzer-compat.so");
const MISSING_VERSIONS = new Set(["GLIBC_2.38", "GLIBCXX_3.4.32"]);
const SHIM_SOURCE = `#include <cstdlib>
#include <ios>
extern "C" long __isoc23_strtol(const char* s, char** end, int base) { return std::strtol(s, end, base); }
extern "C" unsigned long __isoc23_strtoul(const char* s, char** end, int base) { return std::strtoul(s, end, base); }
namespace std { void ios_base_library_init() {} }
static std::ios_base::Init graywall_ios_init;
`;

/** The prebuilt native fuzzer's path in node_modules. */
function prebuilt(): string {
  const req = createRequire(join(ROOT, "package.json"));
  const pkg = dirname(req.resolve("@jazzer.js/fuzzer/package.json"));
  return join(pkg, "prebuilds", `fuzzer-${process.platform}-${process.arch}.node`);
}

/** Whether the prebuilt loads in a fresh Node with `env`, every symbol bound at load (not at first call). */
function loads(env: NodeJS.ProcessEnv): boolean {
  const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(prebuilt())})`], { cwd: ROOT, env: { ...env, LD_BIND_NOW: "1" }, encoding: "utf8" });
  return r.status === 0;
}

/**
 * Marks the ELF file's version requirements in MISSING_VERSIONS weak and makes the symbols bound to them
 * unversioned. Returns how many requirements it changed (0 when already done).
 */
export function relaxVersionNeeds(file: string): number {
  const b = readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) throw new Error(`${file}: not a 64-bit little-endian ELF file`);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const [shentsize, shnum] = [b.readUInt16LE(0x3a), b.readUInt16LE(0x3c)];
  const sections = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      type: b.readUInt32LE(o + 4),
      offset: Number(b.readBigUInt64LE(o + 0x18)),
      size: Number(b.readBigUInt64LE(o + 0x20)),
      link: b.readUInt32LE(o + 0x28),
      info: b.readUInt32LE(o + 0x2c),
    };
  });
  const verneed = sections.find((s) => s.type === 0x6ffffffe); // SHT_GNU_verneed
  const versym = sections.find((s) => s.type === 0x6fffffff); // SHT_GNU_versym
  if (!verneed || !versym) return 0;
  const strtab = sections[verneed.link];
  const name = (off: number) => {
    const start = strtab.offset + off;
    return b.toString("latin1", start, b.indexOf(0, start));
  };
  const VER_FLG_WEAK = 2;
  const indexes = new Set<number>();
  let changed = 0;
  // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
  // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
  for (let n = 0, o = verneed.offset; n < verneed.info; n++) {
    const [count, aux, next] = [b.readUInt16LE(o + 2), b.readUInt32LE(o + 8), b.readUInt32LE(o + 12)];
    for (let k = 0, a = o + aux; k < count; k++) {
      if (MISSING_VERSIONS.has(name(b.readUInt32LE(a + 8)))) {
        indexes.add(b.readUInt16LE(a + 6));
        const flags = b.readUInt16LE(a + 4);
        if ((flags & VER_FLG_WEAK) === 0) {
          b.writeUInt16LE(flags | VER_FLG_WEAK, a + 4);
          changed++;
        }
      }
      const anext = b.readUInt32LE(a + 12);
      if (anext === 0) break;
      a += anext;
    }
    if (next === 0) break;
    o += next;
  }
  for (let p = versym.offset; p < versym.offset + versym.size; p += 2) {
    if (indexes.has(b.readUInt16LE(p) & 0x7fff)) b.writeUInt16LE(1, p); // VER_NDX_GLOBAL: unversioned
  }
  if (changed > 0) writeFileSync(file, b);
  return changed;
}

/**
 * What a process running Jazzer.js needs in its environment here: nothing where the prebuilt loads as
 * it is; else LD_PRELOAD of the compat library (built with g++ on first use) after the prebuilt is relaxed.
 */
export function jazzerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (loads(env)) return env;
  if (!existsSync(SHIM)) {
    mkdirSync(SHIM_DIR, { recursive: true });
    const source = join(SHIM_DIR, "compat.cc");
    writeFileSync(source, SHIM_SOURCE);
    const r = spawnSync("g++", ["-shared", "-fPIC", "-O2", "-o", SHIM, source], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`building the Jazzer.js compat library needs g++: ${r.error?.message ?? r.stderr}`);
  }
  relaxVersionNeeds(prebuilt());
  env.LD_PRELOAD = [SHIM, env.LD_PRELOAD].filter(Boolean).join(":");
  if (!loads(env)) throw new Error(`@jazzer.js/fuzzer does not load here even with ${SHIM} preloaded`);
  return env;
}
