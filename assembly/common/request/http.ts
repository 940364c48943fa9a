// Cookie and query-string lookups over the raw header values. Pure.
import { bytesEqual, indexOfByte } from "../lib/bytes";

/** A run of bytes inside a header value: what the byte lookups below return, without a copy. */
export class ByteSpan {
  ptr: usize = 0;
  len: i32 = 0;
}

/**
 * Finds cookie `name` (its bytes) in the Cookie header's bytes at [ptr, ptr + len) and points `out` at
 * its value (without the quotes RFC 6265 allows). False when absent.
 */
export function cookieAt(ptr: usize, len: i32, name: ArrayBuffer, out: ByteSpan): bool {
  const nameLen = name.byteLength;
  let i = 0;
  while (i < len) {
    while (i < len && (load<u8>(ptr + <usize>i) == 0x20 || load<u8>(ptr + <usize>i) == 0x3b)) i++;
    // The pair's name runs to its '=' (a pair without one has no name), its value to the next ';'.
    let eq = i;
    while (eq < len) {
      const c = load<u8>(ptr + <usize>eq);
      if (c == 0x3d || c == 0x3b) break;
      eq++;
    }
    if (eq >= len || load<u8>(ptr + <usize>eq) != 0x3d) {
      i = eq + 1;
      continue;
    }
    const semi = indexOfByte(ptr, eq + 1, len, 0x3b);
    if (eq > i) {
      let nameEnd = eq;
      while (nameEnd > i && load<u8>(ptr + <usize>nameEnd - 1) == 0x20) nameEnd--;
      if (nameEnd - i == nameLen && bytesEqual(ptr + <usize>i, changetype<usize>(name), nameLen)) {
        let vs = eq + 1;
        let ve = semi;
        while (vs < ve && load<u8>(ptr + <usize>vs) == 0x20) vs++;
        while (ve > vs && load<u8>(ptr + <usize>ve - 1) == 0x20) ve--;
        if (ve - vs >= 2 && load<u8>(ptr + <usize>vs) == 0x22 && load<u8>(ptr + <usize>ve - 1) == 0x22) { vs++; ve--; }
        out.ptr = ptr + <usize>vs;
        out.len = ve - vs;
        return true;
      }
    }
    i = semi + 1;
  }
  return false;
}

/** Whether the bytes at [ptr, ptr + len) contain `needle`, ASCII letters compared without case (`needle` lower-case). */
export function containsNoCase(ptr: usize, len: i32, needle: ArrayBuffer): bool {
  const n = needle.byteLength;
  if (n == 0) return true;
  const np = changetype<usize>(needle);
  const first = load<u8>(np);
  for (let i = 0; i + n <= len; i++) {
    let c = load<u8>(ptr + <usize>i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c != first) continue;
    let k = 1;
    for (; k < n; k++) {
      let d = load<u8>(ptr + <usize>(i + k));
      if (d >= 0x41 && d <= 0x5a) d += 0x20;
      if (d != load<u8>(np + <usize>k)) break;
    }
    if (k == n) return true;
  }
  return false;
}

/** Where the path at [ptr, ptr + len) ends: before its query string or fragment. */
export function pathEnd(ptr: usize, len: i32): i32 {
  for (let i = 0; i < len; i++) {
    const c = load<u8>(ptr + <usize>i);
    if (c == 0x3f || c == 0x23) return i;
  }
  return len;
}

/** The value of cookie `name` in a Cookie header, or null. */
export function findCookie(header: string, name: string): string | null {
  const len = header.length;
  let i = 0;
  while (i < len) {
    while (i < len && (header.charCodeAt(i) == 0x20 || header.charCodeAt(i) == 0x3b)) i++;
    let semi = header.indexOf(";", i);
    if (semi < 0) semi = len;
    const eq = header.indexOf("=", i);
    if (eq > i && eq < semi) {
      let nameEnd = eq;
      while (nameEnd > i && header.charCodeAt(nameEnd - 1) == 0x20) nameEnd--;
      if (nameEnd - i == name.length && header.substring(i, nameEnd) == name) {
        let vs = eq + 1;
        let ve = semi;
        while (vs < ve && header.charCodeAt(vs) == 0x20) vs++;
        while (ve > vs && header.charCodeAt(ve - 1) == 0x20) ve--;
        // RFC 6265 allows a quoted value.
        if (ve - vs >= 2 && header.charCodeAt(vs) == 0x22 && header.charCodeAt(ve - 1) == 0x22) { vs++; ve--; }
        return header.substring(vs, ve);
      }
    }
    i = semi + 1;
  }
  return null;
}

/** The first value of query parameter `name` in a request path ("/a?x=1&y=2"), percent-decoded; null if absent. */
export function findQueryParam(path: string, name: string): string | null {
  const q = path.indexOf("?");
  if (q < 0) return null;
  let frag = path.indexOf("#", q);
  const len = frag < 0 ? path.length : frag;
  let i = q + 1;
  while (i < len) {
    let amp = path.indexOf("&", i);
    if (amp < 0 || amp > len) amp = len;
    let eq = path.indexOf("=", i);
    if (eq < 0 || eq > amp) eq = amp;
    if (percentDecode(path.substring(i, eq)) == name) {
      if (eq < amp) return percentDecode(path.substring(eq + 1, amp));
      return "";
    }
    i = amp + 1;
  }
  return null;
}

function hex(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decodes %XX (as UTF-8) and '+'; malformed escapes stay as they are. */
export function percentDecode(s: string): string {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  const bytes = new Uint8Array(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x2b) { bytes[n++] = 0x20; continue; }
    if (c == 0x25 && i + 2 < s.length) {
      const h = hex(s.charCodeAt(i + 1));
      const l = hex(s.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) { bytes[n++] = <u8>((h << 4) | l); i += 2; continue; }
    }
    if (c < 0x80) { bytes[n++] = <u8>c; continue; }
    // Non-ASCII in a path is unusual; re-encode it as UTF-8 so the decode below round-trips.
    const enc = Uint8Array.wrap(String.UTF8.encode(String.fromCharCode(c)));
    for (let k = 0; k < enc.length; k++) bytes[n++] = enc[k];
  }
  return String.UTF8.decodeUnsafe(bytes.dataStart, n);
}

/** The path without its query string or fragment. */
export function pathOnly(path: string): string {
  let end = path.indexOf("?");
  const h = path.indexOf("#");
  if (h >= 0 && (end < 0 || h < end)) end = h;
  if (end < 0) return path;
  return path.substring(0, end);
}

/** A cookie name this project sets: 1-64 characters of a-z, A-Z, 0-9, '_', '-'. */
export function isCookieName(s: string): bool {
  if (s.length == 0 || s.length > 64) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d;
    if (!ok) return false;
  }
  return true;
}
