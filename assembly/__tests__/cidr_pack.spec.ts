import { CidrSet } from "../common/lib/cidr_set";
import { packCidrs, unpackCidrs } from "../common/lib/cidr_pack";
import { IpAddr, parseIp } from "../common/lib/ip";
import { rnd } from "./random";


function v4(x: u64): string {
  return ((x >> 24) & 255).toString() + "." + ((x >> 16) & 255).toString() + "." + ((x >> 8) & 255).toString() + "." + (x & 255).toString();
}

function v6(hi: u64, lo: u64): string {
  let s = "";
  for (let k = 0; k < 8; k++) {
    const w = k < 4 ? (hi >> <u64>(48 - k * 16)) & 0xffff : (lo >> <u64>(48 - (k - 4) * 16)) & 0xffff;
    s += (k > 0 ? ":" : "") + w.toString(16);
  }
  return s;
}

function unpacked(packed: string): CidrSet {
  const set = new CidrSet();
  expect(unpackCidrs(packed, 0, packed.length, set, 1000000)).toBe("");
  return set;
}

function errorOf(packed: string, max: i32 = 1000): string {
  return unpackCidrs(packed, 0, packed.length, new CidrSet(), max);
}

const a = new IpAddr();

describe("packed CIDR lists", () => {
  it("mean what the list of strings meant (random IPv4 and IPv6 lists, duplicates and covered entries)", () => {
    for (let round = 0; round < 6; round++) {
      const list = new Array<string>();
      const n = 300 + <i32>(rnd() % 700);
      for (let i = 0; i < n; i++) {
        const r = <i32>(rnd() % 100);
        // Few distinct top bits, so entries overlap; some bare addresses; some host bits set.
        if (r < 70) list.push(v4((rnd() & 0xf0f0ffff) | 0x0a000000) + (r < 10 ? "" : "/" + (rnd() % 33).toString()));
        else list.push(v6(rnd() & 0xf0f000000000ffff, rnd()) + (r < 75 ? "" : "/" + (rnd() % 129).toString()));
        if (r == 1 && i > 0) list.push(list[i - 1]);
      }
      const packed = packCidrs(list);
      expect(packed).not.toBeNull();
      const fromPacked = unpacked(packed!);
      const fromStrings = new CidrSet();
      for (let i = 0; i < list.length; i++) expect(fromStrings.add(list[i])).toBe(true, list[i]);
      expect(fromPacked.size).toBe(fromStrings.size);
      expect(fromPacked.rangeCount).toBe(fromStrings.rangeCount);
      for (let q = 0; q < 3000; q++) {
        const x = new IpAddr();
        x.v6 = q % 3 == 2;
        x.hi = x.v6 ? rnd() & 0xf0f000000000ffff : 0;
        x.lo = x.v6 ? rnd() : (rnd() & 0xf0f0ffff) | 0x0a000000;
        expect(fromPacked.contains(x)).toBe(fromStrings.contains(x));
      }
    }
  });

  it("has a fixed layout: version 1, 10.0.0.0/8 as tag 8 and distance 10", () => {
    // Bytes 01 08 0a; host bits are dropped.
    expect(packCidrs(["10.1.2.3/8"])!).toBe("AQgK");
    expect(packCidrs([])!).toBe("AQ==");
    const set = unpacked("AQgK");
    parseIp("10.200.0.1", a);
    expect(set.contains(a)).toBe(true);
    // Padding is optional.
    expect(unpacked("AQ").size).toBe(0);
  });

  it("takes about 3 bytes an entry for 100,000 scattered /24s (the JSON list takes about 18)", () => {
    const list = new Array<string>();
    for (let i = 0; i < 100000; i++) {
      const k = <u64>i * 150 + (rnd() % 100);
      list.push(v4((<u64>1 << 24) + (k << 8)) + "/24");
    }
    const packed = packCidrs(list)!;
    // Three bytes (a tag and a 2-byte distance) are four base64 characters.
    expect(packed.length).toBeLessThanOrEqual(100000 * 4 + 4);
    const set = unpacked(packed);
    expect(set.size).toBe(100000);
    parseIp(list[54321].substring(0, list[54321].length - 3), a);
    expect(set.contains(a)).toBe(true);
  });

  it("refuses a list with an entry that does not parse (left for the filter to report)", () => {
    expect(packCidrs(["10.0.0.0/8", "10.0.0.0/33"])).toBeNull();
    expect(packCidrs(["bogus"])).toBeNull();
  });

  it("says what is wrong with a bad packed list", () => {
    expect(errorOf("").includes("is empty")).toBe(true, "is empty");
    expect(errorOf("AQg*")).toBe("is not base64 (character 3)");
    expect(errorOf("AgAA").includes("format version 2")).toBe(true, "format version 2");
    // Tag 33: neither family.
    expect(errorOf("ASE=").includes("entry 0: tag byte 33")).toBe(true, "entry 0: tag byte 33");
    // A /8 with no distance after it.
    expect(errorOf("AQg=")).toBe("entry 0 is cut short");
    // 0.0.0.0/8 at distance 256: past the end of the IPv4 space.
    expect(errorOf("AQiAAg==").includes("runs past 255.255.255.255")).toBe(true, "runs past 255.255.255.255");
    // A varint of 6 bytes.
    expect(errorOf("ASCAgICAgAE=").includes("longer than 5 bytes")).toBe(true, "longer than 5 bytes");
    // An IPv6 entry needs 16 bytes.
    expect(errorOf("AUAAAA==")).toBe("entry 0 is cut short");
    // One character more than whole bytes need.
    expect(errorOf("AQgKA").includes("stray base64 character")).toBe(true, "stray base64 character");
    const three = packCidrs(["1.0.0.0/8", "2.0.0.0/8", "3.0.0.0/8"])!;
    expect(errorOf(three, 2)).toBe("has more than 2 entries");
    expect(errorOf(three, 3)).toBe("");
  });
});
