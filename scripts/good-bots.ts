// Turns an operator's published address-range file (Google's googlebot.json layout: {"prefixes":
// [{"ipv4Prefix": ...} | {"ipv6Prefix": ...}]}; Bing and others publish the same) into a crawler_score
// `good_bots` entry, checked by the filter's own validator.
// Usage: npx tsx scripts/good-bots.ts --name googlebot --user-agent Googlebot ranges.json [more.json ...]
import { readFileSync } from "node:fs";
import { loadBindings } from "../runtime/bindings.ts";

export interface GoodBot {
  name: string;
  user_agent_contains: string;
  cidrs: string[];
}

/** The good_bots entry for these range documents; throws naming the file and field of a bad prefix. */
export function goodBotFromRanges(name: string, userAgent: string, docs: { file: string; json: unknown }[]): GoodBot {
  const cidrs: string[] = [];
  for (const { file, json } of docs) {
    const prefixes = (json as { prefixes?: unknown }).prefixes;
    if (!Array.isArray(prefixes)) throw new Error(`${file}: prefixes: must be an array`);
    prefixes.forEach((p, i) => {
      const cidr = (p as Record<string, unknown>)?.ipv4Prefix ?? (p as Record<string, unknown>)?.ipv6Prefix;
      if (typeof cidr !== "string") throw new Error(`${file}: prefixes[${i}]: needs ipv4Prefix or ipv6Prefix`);
      cidrs.push(cidr);
    });
  }
  const entry = { name, user_agent_contains: userAgent, cidrs };
  const errors = loadBindings().validateFilterConfig("crawler_score", JSON.stringify({ good_bots: [entry] }));
  if (errors) throw new Error(errors);
  return entry;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (k: string) => {
    const i = args.indexOf(k);
    if (i < 0 || !args[i + 1]) throw new Error(`usage: good-bots.ts --name <name> --user-agent <substring> <ranges.json> ...`);
    return args.splice(i, 2)[1];
  };
  try {
    const name = opt("--name");
    const ua = opt("--user-agent");
    if (args.length === 0) throw new Error("name at least one range file");
    const docs = args.map((file) => ({ file, json: JSON.parse(readFileSync(file, "utf8")) }));
    console.log(JSON.stringify(goodBotFromRanges(name, ua, docs), null, 2));
  } catch (e) {
    console.error(`good-bots: ${(e as Error).message}`);
    process.exit(1);
  }
}
