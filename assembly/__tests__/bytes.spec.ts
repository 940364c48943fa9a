// The byte-level helpers the request path uses instead of strings: a key hash, cookie and path lookups.
import { bytesEqual, indexOfByte } from "../common/lib/bytes";
import { keyHash, stickyBucket, stickyBucketAscii } from "../common/lib/hash";
import { rnd } from "./random";
import { ByteSpan, containsNoCase, cookieAt, findCookie, pathEnd } from "../common/request/http";
import { PathFacts, pathFacts } from "../crawler_score/signals";

function hashOf(s: string): u32 {
  const b = String.UTF8.encode(s);
  return keyHash(changetype<usize>(b), b.byteLength);
}

function cookie(header: string, name: string): string | null {
  const b = String.UTF8.encode(header);
  const span = new ByteSpan();
  if (!cookieAt(changetype<usize>(b), b.byteLength, String.UTF8.encode(name), span)) return null;
  return String.UTF8.decodeUnsafe(span.ptr, <usize>span.len);
}

function contains(s: string, needle: string): bool {
  const b = String.UTF8.encode(s);
  return containsNoCase(changetype<usize>(b), b.byteLength, String.UTF8.encode(needle));
}

describe("keyHash", () => {
  it("gives the values of its TypeScript reference (tests/support/key_hash.ts)", () => {
    expect(hashOf("")).toBe(0);
    expect(hashOf("a")).toBe(0xa3d9539e);
    expect(hashOf("abc")).toBe(0x57146094);
    expect(hashOf("hello")).toBe(0x625112ea);
    expect(hashOf("1234567")).toBe(0xc06a88b5);
    expect(hashOf("12345678")).toBe(0x0a1d0974);
    expect(hashOf("Hello, world!")).toBe(0xcda72048);
    expect(hashOf("The quick brown fox jumps over the lazy dog")).toBe(0x096eed02);
  });

  it("spreads similar keys evenly over a table's slots and feels every byte", () => {
    // 8,192 keys that differ in a digit or two (addresses, ids) over 256 slots: 32 a slot on average.
    const slots = new Int32Array(256);
    for (let i = 0; i < 8192; i++) slots[hashOf("10.0." + (i >> 8).toString() + "." + (i & 255).toString()) & 255]++;
    let most = 0;
    let least = 1 << 30;
    for (let i = 0; i < 256; i++) {
      if (slots[i] > most) most = slots[i];
      if (slots[i] < least) least = slots[i];
    }
    expect(most).toBeLessThan(64);
    expect(least).toBeGreaterThan(8);
    // Flipping any one bit of a 1-40 byte key changes the hash, and about half its bits.
    let changed = 0;
    let flips = 0;
    for (let len = 1; len <= 40; len++) {
      const b = new Uint8Array(len);
      for (let i = 0; i < len; i++) b[i] = <u8>(rnd() * 256);
      const base = keyHash(b.dataStart, len);
      for (let bit = 0; bit < len * 8; bit++) {
        b[bit >> 3] = <u8>(<i32>b[bit >> 3] ^ (1 << (bit & 7)));
        const h = keyHash(b.dataStart, len);
        b[bit >> 3] = <u8>(<i32>b[bit >> 3] ^ (1 << (bit & 7)));
        expect(h).not.toBe(base);
        changed += <i32>popcnt<u32>(h ^ base);
        flips++;
      }
    }
    const mean = <f64>changed / <f64>flips;
    expect(mean).toBeGreaterThan(14.0);
    expect(mean).toBeLessThan(18.0);
  });
});

describe("cookieAt", () => {
  it("finds a cookie's value in the header's bytes as findCookie does in its string", () => {
    const headers = ["a=1; graywall_id=abc.123.def; b=2", "graywall_id=x", " graywall_id = \"q\" ;z=1", "xgraywall_id=1; graywall_idx=2", "graywall_id=", "a=b=c; graywall_id=v=w"];
    for (let i = 0; i < headers.length; i++) {
      const want = findCookie(headers[i], "graywall_id");
      const got = cookie(headers[i], "graywall_id");
      expect(got === null).toBe(want === null);
      if (want !== null && got !== null) expect(got).toBe(want);
    }
    expect(cookie("a=1; graywall_id=abc; b=2", "graywall_id")).toBe("abc");
    expect(cookie("xgraywall_id=1; graywall_idx=2", "graywall_id")).toBeNull();
  });
});

describe("containsNoCase", () => {
  it("matches ASCII letters in any case", () => {
    expect(contains("Mozilla/5.0 (compatible; Googlebot/2.1)", "googlebot")).toBe(true);
    expect(contains("text/HTML,application/xhtml+xml", "text/html")).toBe(true);
    expect(contains("text/plain", "text/html")).toBe(false);
    expect(contains("goo", "googlebot")).toBe(false);
  });
});

describe("pathFacts on bytes", () => {
  it("ignores the query string and fragment, and reads asset extensions in any case", () => {
    const p = String.UTF8.encode("/a/b?x=1#f");
    expect(pathEnd(changetype<usize>(p), p.byteLength)).toBe(4);
    const a = new PathFacts();
    const b = new PathFacts();
    pathFacts("/item/42?utm=1", [], a);
    pathFacts("/item/42", [], b);
    expect(a.pathHash).toBe(b.pathHash);
    expect(a.numericId).toBe(42);
    expect(a.prefixHash).toBe(b.prefixHash);
    pathFacts("/img/Logo.PNG", [], a);
    expect(a.asset).toBe(true);
    pathFacts("/img.png/page", [], a);
    expect(a.asset).toBe(false);
    pathFacts("/wp-admin/x?y", ["/wp-admin"], a);
    expect(a.honeypot).toBe(true);
    pathFacts("/wp", ["/wp-admin"], a);
    expect(a.honeypot).toBe(false);
  });
});

describe("stickyBucketAscii", () => {
  it("gives a header's bytes the bucket stickyBucket gives its string, and declines non-ASCII", () => {
    const keys = ["user-42", "a", "merchant:7781", "0123456789abcdef"];
    for (let i = 0; i < keys.length; i++) {
      const b = String.UTF8.encode(keys[i]);
      expect(stickyBucketAscii("rule-salt", changetype<usize>(b), b.byteLength)).toBe(<i32>stickyBucket("rule-salt", keys[i]));
    }
    const u = String.UTF8.encode("josé");
    expect(stickyBucketAscii("rule-salt", changetype<usize>(u), u.byteLength)).toBe(-1);
  });
});

describe("bytesEqual and indexOfByte", () => {
  it("agree with a byte-at-a-time reference at every length and alignment", () => {
    const a = new Uint8Array(80);
    const b = new Uint8Array(80);
    for (let round = 0; round < 400; round++) {
      for (let i = 0; i < 80; i++) {
        // Few distinct values, with bytes 0x80 and up, so matches, near-misses and high bits all come up.
        const v = <u8>(rnd() % 4) * 0x41;
        a[i] = v;
        b[i] = v;
      }
      const n = <i32>(rnd() % 40);
      const at = <i32>(rnd() % 8);
      const bt = <i32>(rnd() % 8);
      if (rnd() % 2 == 0 && n > 0) b[bt + <i32>(rnd() % <u64>n)] ^= <u8>(1 << <u8>(rnd() % 8));
      let same = true;
      for (let i = 0; i < n; i++) if (a[at + i] != b[bt + i]) same = false;
      expect(bytesEqual(a.dataStart + <usize>at, b.dataStart + <usize>bt, n)).toBe(same);
      const want = <u8>(rnd() % 4) * 0x41;
      let first = at + n;
      for (let i = at; i < at + n; i++) {
        if (a[i] == want) {
          first = i;
          break;
        }
      }
      expect(indexOfByte(a.dataStart, at, at + n, want)).toBe(first);
    }
  });

  it("finds a byte past a run of bytes one below it (no borrow across bytes)", () => {
    const b = String.UTF8.encode("::::::::::::;:");
    expect(indexOfByte(changetype<usize>(b), 0, b.byteLength, 0x3b)).toBe(12);
    expect(indexOfByte(changetype<usize>(b), 13, b.byteLength, 0x3b)).toBe(14);
  });
});
