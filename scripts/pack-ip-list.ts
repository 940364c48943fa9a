// Packs a long CIDR list for a static Envoy config (docs/ip_list.md, "Packed lists"): graywall-control
// delivers long lists packed by itself; a config written by hand carries them as this prints them.
// Usage: npx tsx scripts/pack-ip-list.ts [--key deny|allow] list.txt   (one address or CIDR a line, '#' comments)
import { readFileSync } from "node:fs";
import { loadBindings } from "../runtime/bindings.ts";

/** The list in a text file: one entry a line; blank lines and '#' comments skipped. */
export function readListFile(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => l.length > 0);
}

/** `{"<key>_packed": "..."}` for the list; throws naming the line of an entry the filter would refuse. */
export function packedSection(key: "allow" | "deny", list: string[]): Record<string, string> {
  const bindings = loadBindings();
  list.forEach((c, i) => {
    const err = bindings.validateFilterConfig("ip_list", JSON.stringify({ [key]: [c] }));
    if (err) throw new Error(`entry ${i + 1} ('${c}'): ${err.replace(/^\S+: /, "")}`);
  });
  const packed = bindings.packCidrList(list);
  if (packed === null) throw new Error("the list does not pack");
  return { [`${key}_packed`]: packed };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const k = args.indexOf("--key");
  const key = k >= 0 ? args.splice(k, 2)[1] : "deny";
  if ((key !== "deny" && key !== "allow") || args.length !== 1) {
    console.error("usage: pack-ip-list.ts [--key deny|allow] <list.txt>");
    process.exit(2);
  }
  try {
    console.log(JSON.stringify(packedSection(key, readListFile(readFileSync(args[0], "utf8")))));
  } catch (e) {
    console.error(`${args[0]}: ${(e as Error).message}`);
    process.exit(1);
  }
}
