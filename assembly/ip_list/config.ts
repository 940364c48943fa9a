// ip_list configuration, compiled once into tries.
import { readClientSource } from "../common/request/client_ip";
import { ConfigErrors, ObjReader, readConfigRoot } from "../common/lib/config";
import { CidrTrie } from "../common/lib/cidr_trie";
import { StringSink } from "../common/lib/json";

export class IpListConfig {
  allow: CidrTrie = new CidrTrie();
  deny: CidrTrie = new CidrTrie();
  /** Path prefixes the lists apply to; empty = every path. */
  paths: string[] = [];
  pathBytes: ArrayBuffer[] = [];
  /** Where the client address comes from (common/request/client_ip.ts readClientSource). */
  clientSource: i32 = 0;
  denyStatus: i32 = 403;
  denyBody: string = "forbidden\n";
}

/** Adds each entry straight into the trie, so a long list is never held whole. */
class TrieSink extends StringSink {
  constructor(public trie: CidrTrie, public errors: ConfigErrors, public path: string) { super(); }
  add(index: i32, value: string): void {
    if (!this.trie.add(value)) this.errors.add(this.path + "[" + index.toString() + "]", "invalid IP or CIDR '" + value + "'");
  }
  addSpan(index: i32, src: string, start: i32, end: i32): void {
    if (!this.trie.addRange(src, start, end)) this.add(index, src.substring(start, end));
  }
  expect(count: i32): void { this.trie.reserve(count); }
}

/** The most entries of each list, and of paths (compiled in well under a second; docs/ip_list.md). */
export const MAX_ENTRIES = 200000;
export const MAX_PATHS = 100;

function readList(r: ObjReader, key: string, into: CidrTrie): void {
  r.eachStr(key, new TrieSink(into, r.errors, r.at(key)), MAX_ENTRIES);
}

export function compileIpListConfig(src: string, errors: ConfigErrors): IpListConfig | null {
  const r = readConfigRoot(src, errors);
  if (r === null) return null;
  return readIpListConfig(r);
}

/** Compiles the document `r` reads (the whole config, or the ip_list section of graywall's). */
export function readIpListConfig(r: ObjReader): IpListConfig | null {
  const errors = r.errors;
  const cfg = new IpListConfig();
  readList(r, "allow", cfg.allow);
  readList(r, "deny", cfg.deny);
  cfg.allow.seal();
  cfg.deny.seal();
  cfg.paths = r.strList("paths", MAX_PATHS);
  for (let i = 0; i < cfg.paths.length; i++) {
    if (!cfg.paths[i].startsWith("/")) errors.add(r.at("paths[" + i.toString() + "]"), "must start with '/'");
    cfg.pathBytes.push(String.UTF8.encode(cfg.paths[i]));
  }
  cfg.clientSource = readClientSource(r);
  cfg.denyStatus = <i32>r.int("deny_status", 403, 400, 599);
  cfg.denyBody = r.str("deny_body", cfg.denyBody);
  r.done();
  if (!errors.ok) return null;
  return cfg;
}
