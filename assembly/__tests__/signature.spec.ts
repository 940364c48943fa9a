import { HmacSha256 } from "../common/lib/sha256";
import { RequestSnapshot } from "../common/request/snapshot";
import { byteSequence, componentValue, dictionaryMember, SignatureInput, signatureBase } from "../access/signature";
import { base64Decode } from "../common/lib/base64";

describe("RFC 9421 pieces", () => {
  it("reproduces the RFC's HMAC-SHA256 example (appendix B.2.5): signature base and signature", () => {
    const req = RequestSnapshot.of([
      ":method", "POST", ":path", "/foo?param=Value&Pet=dog", ":authority", "example.com", ":scheme", "https",
      "date", "Tue, 20 Apr 2021 02:07:55 GMT", "content-type", "application/json",
    ]);
    const member = dictionaryMember('sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"', "", [""])!;
    const input = SignatureInput.parse(member);
    expect(input.ok).toBe(true);
    expect(input.created).toBe(1618884473);
    expect(input.keyId).toBe("test-shared-secret");
    const base = signatureBase(req, input.components, member)!;
    expect(base).toBe(
      '"date": Tue, 20 Apr 2021 02:07:55 GMT\n"@authority": example.com\n"content-type": application/json\n' +
        '"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"',
    );
    const key = new Uint8Array(64);
    const n = base64Decode("uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==", key);
    expect(n).toBe(64);
    const mac = new HmacSha256(key.buffer.slice(0, n)).signString(base);
    const expected = new Uint8Array(64);
    expect(byteSequence(":pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:", expected)).toBe(32);
    for (let i = 0; i < 32; i++) expect(mac[i]).toBe(expected[i]);
  });

  it("derived components as the gateway sees the request", () => {
    const req = RequestSnapshot.of([":method", "GET", ":path", "/a/b?x=1&y=2", ":authority", "API.Example:8443", ":scheme", "https"]);
    expect(componentValue(req, "@method")!).toBe("GET");
    expect(componentValue(req, "@target-uri")!).toBe("https://api.example:8443/a/b?x=1&y=2");
    expect(componentValue(req, "@path")!).toBe("/a/b");
    expect(componentValue(req, "@query")!).toBe("?x=1&y=2");
    expect(componentValue(req, "@authority")!).toBe("api.example:8443");
    expect(componentValue(req, "@request-target")!).toBe("/a/b?x=1&y=2");
    expect(componentValue(req, "@query-param")).toBeNull();
    expect(componentValue(req, "content-digest")).toBeNull();
    const plain = RequestSnapshot.of([":method", "GET", ":path", "/a"]);
    expect(componentValue(plain, "@query")!).toBe("?");
  });

  it("dictionary members are found by label, outside quoted strings and inner lists", () => {
    const field = 'a=("x" "y,z");nonce="q,r", b=:AAAA:, c=("@method")';
    const label = [""];
    expect(dictionaryMember(field, "", label)!).toBe('("x" "y,z");nonce="q,r"');
    expect(label[0]).toBe("a");
    expect(dictionaryMember(field, "b", [])!).toBe(":AAAA:");
    expect(dictionaryMember(field, "c", [])!).toBe('("@method")');
    expect(dictionaryMember(field, "d", [])).toBeNull();
  });

  it("refuses what it would otherwise misread: component parameters, upper-case names, unterminated strings", () => {
    expect(SignatureInput.parse('("@query-param";name="x");created=1').ok).toBe(false);
    expect(SignatureInput.parse('("Content-Digest");created=1').ok).toBe(false);
    expect(SignatureInput.parse('("@method);created=1').ok).toBe(false);
    expect(SignatureInput.parse('"@method";created=1').ok).toBe(false);
    const p = SignatureInput.parse('("@method" "@path");created=5;expires=9;nonce="n";alg="hmac-sha256";tag="t"');
    expect(p.ok).toBe(true);
    expect(p.expires).toBe(9);
    expect(p.alg).toBe("hmac-sha256");
  });

  it("base64 and byte sequences", () => {
    const out = new Uint8Array(8);
    expect(base64Decode("aGk=", out)).toBe(2);
    expect(out[0]).toBe(0x68);
    expect(base64Decode("a*b", out)).toBe(-1);
    expect(base64Decode("aGVsbG8gd29ybGQ=", out)).toBe(-1); // longer than the output
    expect(byteSequence("aGk=", out)).toBe(-1); // not between colons
  });
});
