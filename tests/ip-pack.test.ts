// ip_list's packed lists (docs/ip_list.md, "Packed lists"): graywall-control delivers long lists packed,
// and the filter reading the packed form denies exactly what the list of strings denied.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { cidrs } from "../bench/setups.ts";
import { loadBindings } from "../runtime/bindings.ts";
import { composeConfig, PACK_AT, packIpLists } from "../runtime/filters.ts";
import { wasmPath } from "../runtime/paths.ts";
import { ProxyHost } from "./support/proxy_host.ts";

const BROWSER: [string, string][] = [
  [":method", "GET"],
  [":path", "/"],
  [":authority", "x"],
  ["user-agent", "Mozilla/5.0 Chrome/131"],
];

const gateway = (ipList: unknown) => {
  const host = new ProxyHost(wasmPath("graywall"), "graywall");
  assert.ok(host.configure(JSON.stringify({ ip_list: ipList })), host.logs.join("\n"));
  return host;
};

const statusFor = (host: ProxyHost, addr: string) =>
  host.request({ headers: BROWSER, peer: addr.includes(":") ? `[${addr}]:1` : `${addr}:1` }).reply?.status ?? 200;

describe("packed ip lists", () => {
  test("lists of PACK_AT entries or more are delivered packed, shorter ones as they are", () => {
    const short = { deny: cidrs(PACK_AT - 1), deny_status: 451 };
    assert.deepEqual(composeConfig({ ip_list: short }).ip_list, short);
    const packed = composeConfig({ ip_list: { allow: ["0.0.0.0/0"], deny: cidrs(PACK_AT), deny_status: 451 } }).ip_list as Record<string, unknown>;
    assert.deepEqual(Object.keys(packed).sort(), ["allow", "deny_packed", "deny_status"]);
    assert.equal(loadBindings().validateFilterConfig("ip_list", JSON.stringify(packed)), "");
  });

  test("a document is packed once: composing the stages again (any stage's publish does) reuses its packed form", () => {
    const docs = { ip_list: { deny: cidrs(PACK_AT) }, gray_router: { rules: [] } };
    const first = composeConfig(docs).ip_list;
    assert.equal(composeConfig(docs).ip_list, first);
    // A list that grew is packed again.
    docs.ip_list.deny.push("192.0.2.1");
    const grown = composeConfig(docs).ip_list as Record<string, string>;
    assert.notEqual(grown, first);
    assert.equal(gateway(grown).request({ headers: BROWSER, peer: "192.0.2.1:1" }).reply?.status, 403);
  });

  test("the packed list denies exactly what the list of strings denied, IPv6 and bare addresses too", () => {
    const list = [...cidrs(5000), "2001:db8::/32", "2001:db8:ffff::1", "198.51.100.9", "::ffff:192.0.2.0/120"];
    const doc = packIpLists({ deny: list }) as Record<string, string>;
    assert.ok(doc.deny_packed.length < JSON.stringify(list).length / 3, `${doc.deny_packed.length} characters`);
    const asStrings = gateway({ deny: list });
    const asPacked = gateway(doc);
    const probes = ["2001:db8::7", "2001:db9::7", "2001:db8:ffff::1", "198.51.100.9", "198.51.100.10", "192.0.2.77", "192.0.3.1", "127.0.0.1"];
    // Inside some listed /24 and /32s, and just past each.
    for (const c of list.slice(0, 2000)) {
      if (c.includes(":")) continue;
      const [a] = c.split("/");
      const o = a.split(".").map(Number);
      probes.push(a, `${o[0]}.${o[1]}.${o[2]}.200`, `${o[0]}.${o[1]}.${(o[2] + 1) & 255}.0`);
    }
    let denied = 0;
    for (const p of probes) {
      const want = statusFor(asStrings, p);
      assert.equal(statusFor(asPacked, p), want, p);
      if (want === 403) denied++;
    }
    assert.ok(denied > 2000, `${denied} of ${probes.length} probes denied`);
    assert.equal(asPacked.metric("graywall.ip_list.denied.deny_list"), BigInt(denied));
  });

  test("a list the filter would refuse is left as it is, for the filter to name the entry", () => {
    const bad = { deny: [...cidrs(PACK_AT), "10.0.0.0/33"] };
    assert.deepEqual(packIpLists(bad), bad);
    assert.match(loadBindings().validateFilterConfig("ip_list", JSON.stringify(bad)), /deny\[1000\]: invalid IP or CIDR '10\.0\.0\.0\/33'/);
    // An entry with a line break is never split into two.
    const sneaky = { deny: [...cidrs(PACK_AT), "10.0.0.1\n10.0.0.2"] };
    assert.deepEqual(packIpLists(sneaky), sneaky);
    // A document that already has a packed part keeps its list of strings beside it.
    const both = { deny: cidrs(PACK_AT), deny_packed: "AQ==" };
    assert.deepEqual(packIpLists(both), both);
  });
});

describe("damaged packed lists", () => {
  test("any bytes after the version are refused with an error naming the field, or accepted and served: never a trap", () => {
    const bindings = loadBindings();
    let accepted = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (bytes, pad) => {
        const b64 = Buffer.from([1, ...bytes]).toString("base64");
        const doc = JSON.stringify({ deny_packed: pad ? b64 : b64.replace(/=+$/, "") });
        const errors = bindings.validateFilterConfig("ip_list", doc);
        if (errors) {
          assert.match(errors, /^deny_packed: /);
          return;
        }
        accepted++;
        // What the compiler accepts, the module configures with and serves.
        const host = gateway(JSON.parse(doc));
        assert.ok([200, 403].includes(statusFor(host, "198.51.100.1")));
      }),
      { numRuns: 300 },
    );
    assert.ok(accepted > 0, "some random lists are well formed");
  });
});

describe("scripts/pack-ip-list.ts", () => {
  test("packs a text list for a static config, and names the line of a bad entry", async () => {
    const { packedSection, readListFile } = await import("../scripts/pack-ip-list.ts");
    const list = readListFile("# blocked\n203.0.113.0/24\n\n198.51.100.7  # one host\n2001:db8::/32\n");
    assert.deepEqual(list, ["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"]);
    const section = packedSection("allow", list);
    const host = gateway(section);
    assert.equal(statusFor(host, "203.0.113.9"), 200);
    assert.equal(statusFor(host, "198.51.100.8"), 403);
    assert.equal(statusFor(host, "2001:db8::1"), 200);
    assert.throws(() => packedSection("deny", ["10.0.0.0/8", "10.0.0.300"]), /entry 2 \('10\.0\.0\.300'\): invalid IP or CIDR/);
  });
});
