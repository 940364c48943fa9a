import { resolveClientIp, xffFromRightCached, xffParsed } from "../common/request/client_ip";
import { IpAddr } from "../common/lib/ip";

function bytes(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function entry(xff: string, index: i32, out: IpAddr): bool {
  const b = bytes(xff);
  return xffFromRightCached(changetype<usize>(b), b.byteLength, index, out);
}

describe("X-Forwarded-For entries, remembered", () => {
  it("a value read before costs a compare, from any request's bytes, for the entry asked", () => {
    const before = xffParsed;
    const out = new IpAddr();
    expect(entry("198.51.100.7, 203.0.113.9", 0, out)).toBe(true);
    expect(out.lo).toBe(0xcb007109);
    expect(xffParsed).toBe(before + 1);
    // The same value in another buffer: no parse, the same address.
    const again = new IpAddr();
    expect(entry("198.51.100.7, 203.0.113.9", 0, again)).toBe(true);
    expect(again.lo).toBe(0xcb007109);
    expect(again.v6).toBe(false);
    expect(xffParsed).toBe(before + 1);
    // Another entry of the same value is its own.
    expect(entry("198.51.100.7, 203.0.113.9", 1, again)).toBe(true);
    expect(again.lo).toBe(0xc6336407);
    expect(xffParsed).toBe(before + 2);
    // A client-written entry left of Envoy's changes the value, so it is read again.
    expect(entry("10.0.0.1, 198.51.100.7, 203.0.113.9", 0, again)).toBe(true);
    expect(again.lo).toBe(0xcb007109);
    expect(xffParsed).toBe(before + 3);
  });

  it("IPv6 is kept whole; a value without an address there is never kept", () => {
    const before = xffParsed;
    const out = new IpAddr();
    expect(entry("2001:db8::1", 0, out)).toBe(true);
    const v6 = new IpAddr();
    expect(entry("2001:db8::1", 0, v6)).toBe(true);
    expect(v6.v6).toBe(true);
    expect(v6.hi).toBe(out.hi);
    expect(v6.lo).toBe(out.lo);
    expect(xffParsed).toBe(before + 1);
    expect(entry("not-an-address", 0, out)).toBe(false);
    expect(entry("not-an-address", 0, out)).toBe(false);
    expect(xffParsed).toBe(before + 3);
  });

  it("trusted hops read through the same memory, and fall back to the peer when XFF is short", () => {
    const b = bytes("198.51.100.7, 203.0.113.9");
    const out = new IpAddr();
    expect(resolveClientIp("192.0.2.1:5000", changetype<usize>(b), b.byteLength, 1, out)).toBe(true);
    expect(out.lo).toBe(0xc6336407);
    expect(resolveClientIp("192.0.2.1:5000", changetype<usize>(b), b.byteLength, 2, out)).toBe(true);
    expect(out.lo).toBe(0xc0000201);
  });
});
