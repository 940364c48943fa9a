import { ClientIds, ClientIdSpec, NO_ID_COOKIE } from "../crawler_score/client_id";
import { ByteSpan } from "../common/request/http";

const SECRET = "client-id-secret-0123456789";
const NOW: i64 = 1_800_000_000;

function ids(secret: string = SECRET): ClientIds {
  return new ClientIds(new ClientIdSpec(), secret);
}

/** A Cookie header's bytes in a buffer of their own (another request's header sits elsewhere in memory). */
function header(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function at(b: ArrayBuffer, n: i64, c: ClientIds, span: ByteSpan): i32 {
  return c.idInCookies(changetype<usize>(b), b.byteLength, n, span);
}

function spanText(span: ByteSpan): string {
  return String.UTF8.decodeUnsafe(span.ptr, <usize>span.len);
}

describe("client ids in a Cookie header", () => {
  it("a header seen before costs a compare: the same id, its span in this request's bytes", () => {
    const c = ids();
    const value = c.issue("203.0.113.5", "ua", NOW);
    const text = "theme=dark; graywall_id=" + value + "; lang=en";
    const span = new ByteSpan();
    const first = header(text);
    const n = at(first, NOW, c, span);
    expect(n).toBe(24);
    expect(spanText(span)).toBe(value);
    expect(c.lookedThrough).toBe(1);
    // The same bytes from another request, elsewhere in memory.
    const again = header(text);
    const span2 = new ByteSpan();
    expect(at(again, NOW + 5, c, span2)).toBe(24);
    expect(c.lookedThrough).toBe(1);
    expect(span2.ptr).toBe(changetype<usize>(again) + <usize>(text.indexOf("graywall_id=") + 12));
    expect(spanText(span2)).toBe(value);
    // Another header carrying the same id is looked through once, then remembered too.
    const other = header("graywall_id=" + value);
    expect(at(other, NOW, c, span)).toBe(24);
    expect(at(header("graywall_id=" + value), NOW, c, span)).toBe(24);
    expect(c.lookedThrough).toBe(2);
  });

  it("a remembered header's id still expires, and a rotation without previous_secret forgets it", () => {
    const c = ids();
    const text = "graywall_id=" + c.issue("203.0.113.5", "ua", NOW);
    const span = new ByteSpan();
    expect(at(header(text), NOW, c, span)).toBe(24);
    expect(at(header(text), NOW + <i64>c.spec.maxAgeSeconds - 1, c, span)).toBe(24);
    expect(at(header(text), NOW + <i64>c.spec.maxAgeSeconds, c, span)).toBe(-1);
    // Valid again at the earlier time; then a rekey to a new secret alone refuses it.
    expect(at(header(text), NOW, c, span)).toBe(24);
    c.rekey("another-secret-0123456789", "");
    expect(at(header(text), NOW, c, span)).toBe(-1);
  });

  it("a forged id is never remembered; a header without the cookie says so", () => {
    const c = ids();
    const value = c.issue("203.0.113.5", "ua", NOW);
    const forged = "graywall_id=" + value.substring(0, value.length - 1) + (value.endsWith("0") ? "1" : "0");
    const span = new ByteSpan();
    expect(at(header(forged), NOW, c, span)).toBe(-1);
    expect(at(header(forged), NOW, c, span)).toBe(-1);
    expect(c.lookedThrough).toBe(2);
    expect(at(header("theme=dark; other_id=" + value), NOW, c, span)).toBe(NO_ID_COOKIE);
    // A valid id from another secret is foreign.
    const foreign = ids("foreign-secret-0123456789");
    expect(at(header("graywall_id=" + foreign.issue("203.0.113.5", "ua", NOW)), NOW, c, span)).toBe(-1);
  });
});
