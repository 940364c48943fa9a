import { Cidr, IpAddr, parseCidr, parseHostPort, parseIp } from "../common/lib/ip";
import { CidrSet } from "../common/lib/cidr_set";
import { resolveClientIp } from "../common/request/client_ip";
import { rnd } from "./random";

/** resolveClientIp with X-Forwarded-For given as a string (null: absent). */
function resolve(peer: string | null, xff: string | null, hops: i32, out: IpAddr): bool {
  if (xff === null) return resolveClientIp(peer, 0, 0, hops, out);
  const b = String.UTF8.encode(xff);
  return resolveClientIp(peer, changetype<usize>(b), b.byteLength, hops, out);
}

const a = new IpAddr();

describe("parseIp", () => {
  it("parses IPv4 strictly", () => {
    expect(parseIp("192.168.1.200", a)).toBe(true);
    expect(a.v6).toBe(false);
    expect(a.lo).toBe(0xc0a801c8);
    const bad = ["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "a.b.c.d", "", "1.2.3.4 x"];
    for (let i = 0; i < bad.length; i++) expect(parseIp(bad[i], a)).toBe(false, bad[i]);
  });
  it("parses IPv6 forms", () => {
    expect(parseIp("2001:db8::1", a)).toBe(true);
    expect(a.v6).toBe(true);
    expect(a.hi).toBe(0x20010db800000000);
    expect(a.lo).toBe(1);
    expect(parseIp("::", a)).toBe(true);
    expect(a.hi).toBe(0);
    expect(parseIp("1:2:3:4:5:6:7:8", a)).toBe(true);
    expect(a.lo).toBe(0x0005000600070008);
    expect(parseIp("64:ff9b::192.0.2.33", a)).toBe(true);
    expect(a.lo).toBe(0xc0000221);
    const bad = ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", ":1:2", "1:2:", "g::1", "1:2:3:4:5:6:7::8:9"];
    for (let i = 0; i < bad.length; i++) expect(parseIp(bad[i], a)).toBe(false, bad[i]);
  });
  it("maps ::ffff:a.b.c.d to IPv4", () => {
    expect(parseIp("::ffff:10.1.2.3", a)).toBe(true);
    expect(a.v6).toBe(false);
    expect(a.lo).toBe(0x0a010203);
  });
  it("reads Envoy's host:port forms", () => {
    expect(parseHostPort("10.0.0.1:5555", a)).toBe(true);
    expect(a.lo).toBe(0x0a000001);
    expect(parseHostPort("[::1]:80", a)).toBe(true);
    expect(a.v6).toBe(true);
    expect(a.lo).toBe(1);
    expect(parseHostPort("[::1", a)).toBe(false);
  });
});

const c = new Cidr();

describe("parseCidr", () => {
  it("accepts addresses and prefixes", () => {
    expect(parseCidr("10.0.0.0/8", c)).toBe(true);
    expect(c.prefix).toBe(8);
    expect(parseCidr("10.0.0.1", c)).toBe(true);
    expect(c.prefix).toBe(32);
    expect(parseCidr("2001:db8::/32", c)).toBe(true);
    expect(c.prefix).toBe(32);
    expect(parseCidr("::ffff:10.0.0.0/104", c)).toBe(true);
    expect(c.addr.v6).toBe(false);
    expect(c.prefix).toBe(8);
  });
  it("rejects bad prefixes", () => {
    const bad = ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129", "10.0.0.0/-1", "/8"];
    for (let i = 0; i < bad.length; i++) expect(parseCidr(bad[i], c)).toBe(false, bad[i]);
  });
});

function maskBits(hi: u64, lo: u64, bits: i32, prefix: i32, outHiLo: u64[]): void {
  // Keeps the top `prefix` bits of a `bits`-wide address.
  if (bits == 32) {
    const m: u64 = prefix == 0 ? 0 : (<u64>0xffffffff << (32 - prefix)) & 0xffffffff;
    outHiLo[0] = 0;
    outHiLo[1] = lo & m;
    return;
  }
  if (prefix <= 64) {
    outHiLo[0] = prefix == 0 ? 0 : hi & (~(<u64>0) << (64 - prefix));
    outHiLo[1] = 0;
  } else {
    outHiLo[0] = hi;
    outHiLo[1] = prefix == 128 ? lo : lo & (~(<u64>0) << (128 - prefix));
  }
}

const N_CIDRS = 1500;
const N_PROBES = 1500;

describe("CidrSet", () => {
  it("matches a brute-force reference on random v4 and v6 lists", () => {
    for (let round = 0; round < 4; round++) {
      const v6 = round % 2 == 1;
      const bits = v6 ? 128 : 32;
      const set = new CidrSet();
      const pHi = new Array<u64>(N_CIDRS);
      const pLo = new Array<u64>(N_CIDRS);
      const pLen = new Array<i32>(N_CIDRS);
      const tmp: u64[] = [0, 0];
      // Few distinct top bits so that prefixes overlap a lot.
      for (let i = 0; i < N_CIDRS; i++) {
        const c = new Cidr();
        c.addr.v6 = v6;
        c.addr.hi = v6 ? (rnd() & 0xf0f0000000000000) | (rnd() & 0xffff) : 0;
        c.addr.lo = v6 ? rnd() : (rnd() & 0xf0f000ff);
        const r = <i32>(rnd() % 100);
        c.prefix = r < 2 ? 0 : r < 5 ? bits : <i32>(rnd() % <u64>(bits + 1));
        if (round >= 2 && c.prefix == 0) c.prefix = 1;
        set.insert(c);
        pHi[i] = c.addr.hi;
        pLo[i] = c.addr.lo;
        pLen[i] = c.prefix;
      }
      for (let q = 0; q < N_PROBES; q++) {
        const x = new IpAddr();
        x.v6 = v6;
        // Half the probes sit inside some listed prefix, half are random.
        const k = <i32>(rnd() % <u64>N_CIDRS);
        x.hi = v6 ? (q % 2 == 0 ? pHi[k] : rnd() & 0xf0f0000000000000) : 0;
        x.lo = v6 ? (q % 2 == 0 ? pLo[k] ^ (rnd() & 0xff) : rnd()) : (q % 2 == 0 ? pLo[k] ^ (rnd() & 0xff) : rnd() & 0xffffffff);
        let want = false;
        for (let i = 0; i < pLen.length && !want; i++) {
          maskBits(x.hi, x.lo, bits, pLen[i], tmp);
          const h0 = tmp[0];
          const l0 = tmp[1];
          maskBits(pHi[i], pLo[i], bits, pLen[i], tmp);
          if (h0 == tmp[0] && l0 == tmp[1]) want = true;
        }
        expect(set.contains(x)).toBe(want);
      }
    }
  });

  it("holds an IPv4 entry in 8 bytes while staged and merges adjacent and covered ranges once built", () => {
    const t = new CidrSet();
    t.reserve(100000);
    expect(t.heldBytes).toBe(800000);
    // 10.0.0.0/24 .. 11.134.159.0/24, one after another: one range once merged.
    for (let i = 0; i < 100000; i++) t.add((10 + (i >> 16)).toString() + "." + ((i >> 8) & 255).toString() + "." + (i & 255).toString() + ".0/24");
    expect(t.heldBytes).toBe(800000);
    expect(t.rangeCount).toBe(1);
    expect(t.heldBytes).toBe(8);
    parseIp("10.1.134.9", a);
    expect(t.contains(a)).toBe(true);
    parseIp("11.134.159.200", a);
    expect(t.contains(a)).toBe(true);
    parseIp("11.134.160.1", a);
    expect(t.contains(a)).toBe(false);
    parseIp("9.255.255.255", a);
    expect(t.contains(a)).toBe(false);
  });

  it("holds 100,000 scattered entries in 8 bytes each, built or not", () => {
    const t = new CidrSet();
    t.reserve(100000);
    // Every other /24 (never adjacent), so nothing merges.
    for (let i = 0; i < 100000; i++) {
      const k = i * 2;
      t.add((20 + (k >> 16)).toString() + "." + ((k >> 8) & 255).toString() + "." + (k & 255).toString() + ".0/24");
    }
    expect(t.rangeCount).toBe(100000);
    expect(t.heldBytes).toBe(800000);
    parseIp("20.0.2.77", a);
    expect(t.contains(a)).toBe(true);
    parseIp("20.0.3.77", a);
    expect(t.contains(a)).toBe(false);
  });

  it("adds entries after a build and still answers like the reference", () => {
    const t = new CidrSet();
    t.add("10.0.0.0/8");
    parseIp("10.9.9.9", a);
    expect(t.contains(a)).toBe(true);
    parseIp("11.0.0.1", a);
    expect(t.contains(a)).toBe(false);
    t.add("11.0.0.0/16");
    t.add("2001:db8::/32");
    expect(t.contains(a)).toBe(true);
    expect(t.rangeCount).toBe(2);
    t.add("2001:db9::/32");
    // Adjacent IPv6 ranges merge too.
    expect(t.rangeCount).toBe(2);
    parseIp("2001:db9:ffff::1", a);
    expect(t.contains(a)).toBe(true);
    parseIp("2001:dba::", a);
    expect(t.contains(a)).toBe(false);
    t.add("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120");
    parseIp("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", a);
    expect(t.contains(a)).toBe(true);
    t.add("255.255.255.255");
    parseIp("255.255.255.255", a);
    expect(t.contains(a)).toBe(true);
  });

  it("keeps families apart and handles /0, /32, /128", () => {
    const t = new CidrSet();
    expect(t.add("10.1.2.3/32")).toBe(true);
    expect(t.add("2001:db8::1/128")).toBe(true);
    parseIp("10.1.2.3", a);
    expect(t.contains(a)).toBe(true);
    parseIp("10.1.2.4", a);
    expect(t.contains(a)).toBe(false);
    parseIp("2001:db8::1", a);
    expect(t.contains(a)).toBe(true);
    parseIp("2001:db8::2", a);
    expect(t.contains(a)).toBe(false);
    expect(t.add("0.0.0.0/0")).toBe(true);
    parseIp("8.8.8.8", a);
    expect(t.contains(a)).toBe(true);
    parseIp("::2", a);
    expect(t.contains(a)).toBe(false);
    expect(t.add("not-an-ip")).toBe(false);
  });
});

describe("resolveClientIp", () => {
  // XFF as the filter sees it: Envoy has appended the peer (here 10.0.0.9) as the last entry.
  it("uses the peer without trusted hops, ignoring XFF", () => {
    expect(resolve("10.0.0.9:1234", "1.1.1.1, 10.0.0.9", 0, a)).toBe(true);
    expect(a.lo).toBe(0x0a000009);
  });
  it("takes the Nth entry from the right of XFF as it arrived", () => {
    expect(resolve("10.0.0.9:1234", "6.6.6.6, 1.1.1.1, 2.2.2.2, 10.0.0.9", 1, a)).toBe(true);
    expect(a.lo).toBe(0x02020202);
    expect(resolve("10.0.0.9:1234", "6.6.6.6, 1.1.1.1, 2.2.2.2, 10.0.0.9", 2, a)).toBe(true);
    expect(a.lo).toBe(0x01010101);
  });
  it("falls back to the peer when XFF is too short or malformed", () => {
    expect(resolve("10.0.0.9:1234", "1.1.1.1, 10.0.0.9", 2, a)).toBe(true);
    expect(a.lo).toBe(0x0a000009);
    expect(resolve("10.0.0.9:1234", "10.0.0.9", 1, a)).toBe(true);
    expect(a.lo).toBe(0x0a000009);
    expect(resolve("10.0.0.9:1234", "1.1.1.1, garbage, 10.0.0.9", 1, a)).toBe(true);
    expect(a.lo).toBe(0x0a000009);
    expect(resolve("10.0.0.9:1234", ",,,", 2, a)).toBe(true);
    expect(a.lo).toBe(0x0a000009);
    expect(resolve(null, null, 1, a)).toBe(false);
  });
  it("reads IPv6 XFF entries", () => {
    expect(resolve("[::1]:80", "2001:db8::7,192.0.2.2", 1, a)).toBe(true);
    expect(a.v6).toBe(true);
    expect(a.lo).toBe(7);
  });
});
